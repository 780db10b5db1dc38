/*
 * Coroutine context switch for AArch64 (AAPCS64).
 *
 * void fut__ctx_switch(void **save_sp, void *load_sp)
 *
 * Saves the callee-saved registers x19-x28, the frame pointer x29, the
 * link register x30, the low halves of v8-v15 (d8-d15, the only callee-
 * saved parts of the vector registers) and FPCR (rounding mode and traps:
 * the "FPU control word" of this architecture) in a 176-byte frame on the
 * current stack, stores sp in *save_sp, and resumes the context whose
 * stack pointer is load_sp by returning to its x30.
 *
 * A new context is a frame laid out exactly like this one whose x30 is
 * fut__ctx_entry: it calls x20(x19).
 */
	.text
	.globl	fut__ctx_switch
	.hidden	fut__ctx_switch
	.type	fut__ctx_switch, %function
	.p2align 4
fut__ctx_switch:
	sub	sp, sp, #176
	stp	x19, x20, [sp, #0]
	stp	x21, x22, [sp, #16]
	stp	x23, x24, [sp, #32]
	stp	x25, x26, [sp, #48]
	stp	x27, x28, [sp, #64]
	stp	x29, x30, [sp, #80]
	stp	d8, d9, [sp, #96]
	stp	d10, d11, [sp, #112]
	stp	d12, d13, [sp, #128]
	stp	d14, d15, [sp, #144]
	mrs	x9, fpcr
	str	x9, [sp, #160]
	mov	x9, sp
	str	x9, [x0]
	mov	sp, x1
	ldr	x9, [sp, #160]
	msr	fpcr, x9
	ldp	x19, x20, [sp, #0]
	ldp	x21, x22, [sp, #16]
	ldp	x23, x24, [sp, #32]
	ldp	x25, x26, [sp, #48]
	ldp	x27, x28, [sp, #64]
	ldp	x29, x30, [sp, #80]
	ldp	d8, d9, [sp, #96]
	ldp	d10, d11, [sp, #112]
	ldp	d12, d13, [sp, #128]
	ldp	d14, d15, [sp, #144]
	add	sp, sp, #176
	ret
	.size	fut__ctx_switch, .-fut__ctx_switch

	.globl	fut__ctx_entry
	.hidden	fut__ctx_entry
	.type	fut__ctx_entry, %function
	.p2align 4
fut__ctx_entry:
	mov	x29, #0		/* outermost frame for unwinders */
	mov	x0, x19
	blr	x20
	brk	#0		/* the entry function never returns */
	.size	fut__ctx_entry, .-fut__ctx_entry

	.section .note.GNU-stack,"",%progbits

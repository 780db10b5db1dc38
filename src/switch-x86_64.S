/*
 * Coroutine context switch for x86-64 System V.
 *
 * void fut__ctx_switch(void **save_sp, void *load_sp)
 *
 * Saves the callee-saved registers (rbx, rbp, r12-r15), the x87 control
 * word and MXCSR on the current stack, stores the stack pointer in
 * *save_sp, and resumes the context whose stack pointer is load_sp. The
 * FPU control words are part of the context because a coroutine that
 * changes rounding mode must not change it for the loop (boost.context
 * keeps them for the same reason). Caller-saved registers need no saving:
 * this is an ordinary call as far as the compiler knows.
 *
 * A new context is a stack laid out exactly as this function leaves one,
 * whose return address is fut__ctx_entry: it calls r13(r12).
 * rcx is caller-saved, so using it for the jump costs nothing.
 */
	.text
	.globl	fut__ctx_switch
	.hidden	fut__ctx_switch
	.type	fut__ctx_switch, @function
	.p2align 4
fut__ctx_switch:
	.cfi_startproc
	pushq	%rbp
	pushq	%rbx
	pushq	%r12
	pushq	%r13
	pushq	%r14
	pushq	%r15
	subq	$16, %rsp
	stmxcsr	8(%rsp)
	fnstcw	(%rsp)
	movq	%rsp, (%rdi)
	movq	%rsi, %rsp
	ldmxcsr	8(%rsp)
	fldcw	(%rsp)
	addq	$16, %rsp
	popq	%r15
	popq	%r14
	popq	%r13
	popq	%r12
	popq	%rbx
	popq	%rbp
	/* Not ret: the return-stack predictor would expect the caller of
	 * this call and mispredict on every switch. An indirect jump is
	 * predicted from its own history, which is what a ping-pong has
	 * (boost.context does the same). */
	popq	%rcx
	jmp	*%rcx
	.cfi_endproc
	.size	fut__ctx_switch, .-fut__ctx_switch

	.globl	fut__ctx_entry
	.hidden	fut__ctx_entry
	.type	fut__ctx_entry, @function
	.p2align 4
fut__ctx_entry:
	.cfi_startproc
	.cfi_undefined rip	/* outermost frame: stop unwinders here */
	movq	%r12, %rdi
	callq	*%r13
	ud2			/* the entry function never returns */
	.cfi_endproc
	.size	fut__ctx_entry, .-fut__ctx_entry

	.section .note.GNU-stack,"",@progbits

/*
 * HTTP peer for bench/http.sh: the floor. One thread, level-triggered
 * epoll, one recv per readiness, and for every "\r\n\r\n" in what arrived
 * one fixed response (the same bytes libfuture's httpd sends for "/",
 * Date header included). It parses nothing and checks nothing, so no real
 * server can be cheaper per request: the syscalls and the TCP stack are
 * all that is left.
 *
 * Usage: raw_epoll PORT
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static char resp[256];
static size_t resp_len;
static time_t resp_sec;

/* The Date header changes once a second, as in every real server. */
static void refresh(void)
{
	time_t now = time(NULL);
	if (now == resp_sec)
		return;
	resp_sec = now;
	struct tm tm;
	char date[64];
	gmtime_r(&now, &tm);
	strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
	resp_len = (size_t)snprintf(resp, sizeof resp,
				    "HTTP/1.1 200 OK\r\nDate: %s\r\n"
				    "Content-Type: text/plain\r\n"
				    "Content-Length: 12\r\n\r\nhello world\n",
				    date);
}

static int count_ends(const char *b, size_t n, int *state)
{
	/* state: how much of "\r\n\r\n" the previous read ended with */
	static const char end[] = "\r\n\r\n";
	int k = 0, s = *state;
	for (size_t i = 0; i < n; i++) {
		if (b[i] == end[s])
			s++;
		else
			s = b[i] == '\r';
		if (s == 4) {
			k++;
			s = 0;
		}
	}
	*state = s;
	return k;
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: raw_epoll PORT\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	int ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int one = 1;
	setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_port = htons((uint16_t)atoi(argv[1])),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	if (bind(ls, (struct sockaddr *)&a, sizeof a) < 0 ||
	    listen(ls, 4096) < 0) {
		perror("raw_epoll: bind/listen");
		return 1;
	}
	int ep = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event ev = { .events = EPOLLIN, .data.fd = ls };
	epoll_ctl(ep, EPOLL_CTL_ADD, ls, &ev);
	static int state[65536];
	static char buf[16384];
	struct epoll_event evs[512];
	for (;;) {
		int n = epoll_wait(ep, evs, 512, -1);
		if (n < 0 && errno != EINTR)
			return 1;
		refresh();
		for (int i = 0; i < n; i++) {
			int fd = evs[i].data.fd;
			if (fd == ls) {
				int c;
				while ((c = accept4(ls, NULL, NULL,
						    SOCK_NONBLOCK |
							    SOCK_CLOEXEC)) >= 0) {
					if (c >= 65536) {
						close(c);
						continue;
					}
					setsockopt(c, IPPROTO_TCP, TCP_NODELAY,
						   &one, sizeof one);
					state[c] = 0;
					ev.events = EPOLLIN;
					ev.data.fd = c;
					epoll_ctl(ep, EPOLL_CTL_ADD, c, &ev);
				}
				continue;
			}
			ssize_t r = recv(fd, buf, sizeof buf, 0);
			if (r <= 0) {
				if (r < 0 && errno == EAGAIN)
					continue;
				close(fd);
				continue;
			}
			int k = count_ends(buf, (size_t)r, &state[fd]);
			/* wrk sends one request at a time: k is 1 */
			for (int j = 0; j < k; j++)
				if (send(fd, resp, resp_len, 0) < 0)
					break;
		}
	}
}

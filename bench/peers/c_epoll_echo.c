/* Not ours in spirit: the floor. A minimal epoll echo server in C, the same loop as
 * epoll_mux (level-triggered, non-blocking, echo at once, keep what send() did not
 * take and wait for EPOLLOUT), so the benchmark can show what Python costs on top.
 *
 *   c_epoll_echo PORT
 *
 * No limits, no graceful stop, no idle timeout: a yardstick, not a server to run.
 */
#define _GNU_SOURCE
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define BUFFER 65536
#define MAX_FD 65536

typedef struct { char data[BUFFER]; size_t start, end; unsigned events; } Pending;
static Pending *pending[MAX_FD]; /* bytes owed to each descriptor, or NULL */

static void drop(int epoll_fd, int fd) {
    epoll_ctl(epoll_fd, EPOLL_CTL_DEL, fd, NULL);
    free(pending[fd]);
    pending[fd] = NULL;
    close(fd);
}

static void watch(int epoll_fd, int fd, int operation, unsigned events) {
    struct epoll_event event = {.events = events, .data.fd = fd};
    epoll_ctl(epoll_fd, operation, fd, &event);
}

int main(int argc, char **argv) {
    if (argc != 2) return 2;
    int listener = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0), one = 1;
    setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[1])),
                                  .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (bind(listener, (struct sockaddr *)&address, sizeof address) || listen(listener, 4096)) return 1;
    int epoll_fd = epoll_create1(0);
    watch(epoll_fd, listener, EPOLL_CTL_ADD, EPOLLIN);
    struct epoll_event ready[256];
    for (;;) {
        int count = epoll_wait(epoll_fd, ready, 256, -1);
        for (int i = 0; i < count; i++) {
            int fd = ready[i].data.fd;
            if (fd == listener) {
                int client = accept4(listener, NULL, NULL, SOCK_NONBLOCK);
                if (client >= 0 && client < MAX_FD && (pending[client] = calloc(1, sizeof(Pending)))) {
                    pending[client]->events = EPOLLIN;
                    watch(epoll_fd, client, EPOLL_CTL_ADD, EPOLLIN);
                }
                else if (client >= 0)
                    close(client);
                continue;
            }
            Pending *owed = pending[fd];
            if (owed->start == owed->end) { /* owe nothing: read, then echo at once */
                ssize_t got = recv(fd, owed->data, BUFFER, 0);
                if (got <= 0) { drop(epoll_fd, fd); continue; } /* EOF or error (no half-close here) */
                owed->start = 0, owed->end = (size_t)got;
            }
            ssize_t sent = send(fd, owed->data + owed->start, owed->end - owed->start, MSG_NOSIGNAL);
            if (sent < 0) { drop(epoll_fd, fd); continue; }
            owed->start += (size_t)sent;
            /* Still owed: stop reading (backpressure) and wait to write; else back to reading. */
            unsigned events = owed->start < owed->end ? EPOLLOUT : EPOLLIN;
            if (events != owed->events) {
                watch(epoll_fd, fd, EPOLL_CTL_MOD, events);
                owed->events = events;
            }
        }
    }
}

/* The benchmark's load generator: one thread, epoll, as lean as C allows, so that the
 * Python server under test, not this, is what runs out of CPU first.
 *
 *   loadgen HOST PORT CONNECTIONS SIZE INFLIGHT SECONDS [IDLE]
 *
 * Each connection keeps INFLIGHT messages of SIZE bytes outstanding: one is sent for
 * each one whose echo has fully come back. INFLIGHT 0 holds the connections idle. IDLE
 * more connections (default 0) are opened after those and never sent a byte: they are
 * what a server watches without work, the growth study's x axis (bench/growth.py).
 * Every echoed byte is checked against what was sent (a per-connection pattern, so a
 * byte from another client shows up too).
 * Latency is send-start to last-byte-back, per message, into a log-linear histogram
 * (HDR-style: 2^SUB_BITS buckets per power of two, so about 1.5% precision).
 *
 * It talks to its driver (loadgen.py) over stdin and stdout, so the driver can pace the
 * connects and read the server's CPU time and memory exactly around the measured
 * window: it connects in waves, after each printing "accept N" and waiting for a line
 * on stdin; it prints "connected" and waits for a line; it runs for SECONDS, waits for
 * the echoes still owed, and prints one JSON object (round trips, bytes, its own CPU
 * time from getrusage, why it stopped early if it did, and the histogram's non-empty
 * buckets as [lower bound in ns, count] pairs). Each further line on stdin runs and
 * reports another SECONDS on the same connections (none after a failure), so connects
 * that cost more than a run (10,000 of them) are paid once. It keeps its connections
 * open until stdin closes, and exits (3 if it stopped early).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define SUB_BITS 6
#define SUB_COUNT (1 << SUB_BITS)
#define BUCKETS (64 * SUB_COUNT)
#define MAX_INFLIGHT 64
#define READ_CHUNK 65536
#define PERIOD 65521 /* the pattern repeats every PERIOD bytes: prime, so no two streams align */
#define DRAIN_NS 10000000000ull /* how long after a run the echoes still owed may take */

typedef struct {
    int fd;
    uint32_t seed;          /* byte i of this stream is pattern[(seed + i) % PERIOD] */
    uint64_t sent;          /* stream bytes handed to send() */
    uint64_t queued;        /* stream bytes we mean to send (messages started) */
    uint64_t received;      /* stream bytes echoed and checked */
    uint64_t started[MAX_INFLIGHT]; /* send time of each outstanding message, a ring */
    unsigned head, count;
    int want_write;
} Connection;

static uint64_t histogram[BUCKETS];
static uint64_t round_trips;
static uint64_t outstanding; /* messages sent, over every connection, whose echo is owed */
static const char *failure; /* why the run stopped early, if it did */
static size_t message_size;
static unsigned inflight;

/* One period of the pattern, plus READ_CHUNK more: any chunk of any stream is then one
 * contiguous slice of it, sent without a copy and checked with one memcmp(). */
static uint8_t pattern[PERIOD + READ_CHUNK];

static const uint8_t *expected(const Connection *c, uint64_t offset) {
    return pattern + (c->seed + offset) % PERIOD;
}

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Log-linear: values below SUB_COUNT exactly; above, the top SUB_BITS bits after the
 * leading one pick the sub-bucket of its power of two. */
static unsigned bucket_of(uint64_t value) {
    if (value < SUB_COUNT) return (unsigned)value;
    unsigned power = 63 - (unsigned)__builtin_clzll(value);
    unsigned shift = power - SUB_BITS;
    return (shift + 1) * SUB_COUNT + (unsigned)((value >> shift) & (SUB_COUNT - 1));
}

static uint64_t lower_bound(unsigned bucket) {
    if (bucket < SUB_COUNT) return bucket;
    unsigned shift = bucket / SUB_COUNT - 1;
    return ((uint64_t)SUB_COUNT + bucket % SUB_COUNT) << shift;
}

static void watch(int epoll_fd, Connection *c, int want_write) {
    if (c->want_write == want_write) return;
    struct epoll_event event = {.events = EPOLLIN | (want_write ? EPOLLOUT : 0), .data.ptr = c};
    epoll_ctl(epoll_fd, EPOLL_CTL_MOD, c->fd, &event);
    c->want_write = want_write;
}

/* Send what is queued and not yet sent; a full send buffer waits for EPOLLOUT. */
static int flush(int epoll_fd, Connection *c) {
    while (c->sent < c->queued) {
        size_t size = c->queued - c->sent < READ_CHUNK ? c->queued - c->sent : READ_CHUNK;
        ssize_t n = send(c->fd, expected(c, c->sent), size, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EAGAIN) break;
            if (errno == EINTR) continue;
            failure = strerror(errno);
            return -1;
        }
        c->sent += (uint64_t)n;
    }
    watch(epoll_fd, c, c->sent < c->queued);
    return 0;
}

static void start_message(Connection *c) {
    c->started[(c->head + c->count) % MAX_INFLIGHT] = now_ns();
    c->count++;
    outstanding++;
    c->queued += message_size;
}

static int on_readable(int epoll_fd, Connection *c, int running) {
    static uint8_t buffer[READ_CHUNK];
    for (;;) {
        ssize_t n = recv(c->fd, buffer, sizeof buffer, 0);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN) return 0;
            failure = strerror(errno);
            return -1;
        }
        if (n == 0) {
            failure = c->count ? "the server closed a connection that was owed an echo"
                               : "the server closed a connection";
            return -1;
        }
        if (memcmp(buffer, expected(c, c->received), (size_t)n) != 0) {
            failure = "an echoed byte differs from the byte sent";
            return -1;
        }
        uint64_t before = c->received / message_size;
        c->received += (uint64_t)n;
        uint64_t done = c->received / message_size - before;
        uint64_t finished = now_ns();
        while (done--) {
            histogram[bucket_of(finished - c->started[c->head])]++;
            c->head = (c->head + 1) % MAX_INFLIGHT;
            c->count--;
            outstanding--;
            round_trips++;
            if (running) start_message(c);
        }
        if (flush(epoll_fd, c) < 0) return -1;
        if ((size_t)n < sizeof buffer) return 0;
    }
}

/* One measured run of `seconds` over the first `active` connections, and its JSON line. */
static void measure(int epoll_fd, Connection *all, int active, double seconds) {
    memset(histogram, 0, sizeof histogram);
    round_trips = 0;
    uint64_t bytes = 0;
    for (int i = 0; i < active; i++) bytes -= all[i].received; /* earlier runs' bytes cancel */
    struct rusage usage_before, usage_after;
    getrusage(RUSAGE_SELF, &usage_before);
    uint64_t started = now_ns(), deadline = started + (uint64_t)(seconds * 1e9);
    int running = 1;
    for (int i = 0; i < active && running; i++) {
        for (unsigned k = 0; k < inflight; k++) start_message(&all[i]);
        running = flush(epoll_fd, &all[i]) == 0;
    }
    /* After the deadline no message starts, and the run ends once every echo owed is back:
     * the next run then starts from quiet connections, and each echo the server did is
     * counted in the run whose CPU time paid for it. */
    struct epoll_event events[256];
    while (!failure && (running || outstanding)) {
        int ready = epoll_wait(epoll_fd, events, 256, 100);
        uint64_t now = now_ns();
        running = now < deadline;
        if (!running && now - deadline > DRAIN_NS) {
            failure = "echoes still owed 10 s after the run";
            break;
        }
        for (int i = 0; i < ready; i++) {
            Connection *c = events[i].data.ptr;
            int status = (events[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) ? on_readable(epoll_fd, c, running)
                                                                              : flush(epoll_fd, c);
            if (status < 0) break;
        }
    }
    uint64_t elapsed = now_ns() - started;
    getrusage(RUSAGE_SELF, &usage_after);
    double cpu = (double)(usage_after.ru_utime.tv_sec - usage_before.ru_utime.tv_sec) +
                 (double)(usage_after.ru_utime.tv_usec - usage_before.ru_utime.tv_usec) / 1e6 +
                 (double)(usage_after.ru_stime.tv_sec - usage_before.ru_stime.tv_sec) +
                 (double)(usage_after.ru_stime.tv_usec - usage_before.ru_stime.tv_usec) / 1e6;
    for (int i = 0; i < active; i++) bytes += all[i].received;
    printf("{\"seconds\": %.6f, \"round_trips\": %llu, \"bytes\": %llu, \"client_cpu_seconds\": %.6f, ",
           (double)elapsed / 1e9, (unsigned long long)round_trips, (unsigned long long)bytes, cpu);
    if (failure)
        printf("\"failure\": \"%s\", ", failure); /* our own messages and strerror(): no quotes */
    else
        printf("\"failure\": null, ");
    printf("\"histogram_ns\": [");
    const char *separator = "";
    for (unsigned b = 0; b < BUCKETS; b++) {
        if (!histogram[b]) continue;
        printf("%s[%llu, %llu]", separator, (unsigned long long)lower_bound(b), (unsigned long long)histogram[b]);
        separator = ", ";
    }
    printf("]}\n");
    fflush(stdout);
}

int main(int argc, char **argv) {
    if (argc != 7 && argc != 8) {
        fprintf(stderr, "usage: %s HOST PORT CONNECTIONS SIZE INFLIGHT SECONDS [IDLE]\n", argv[0]);
        return 2;
    }
    int active = atoi(argv[3]), idle = argc == 8 ? atoi(argv[7]) : 0;
    message_size = (size_t)atol(argv[4]);
    inflight = (unsigned)atoi(argv[5]);
    double seconds = atof(argv[6]);
    if (active < 1 || idle < 0 || message_size < 1 || inflight > MAX_INFLIGHT || seconds <= 0) {
        fprintf(stderr, "loadgen: bad arguments\n");
        return 2;
    }
    int connections = active + idle;
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *address;
    if (getaddrinfo(argv[1], argv[2], &hints, &address) != 0) {
        fprintf(stderr, "loadgen: cannot resolve %s\n", argv[1]);
        return 1;
    }
    for (size_t i = 0; i < sizeof pattern; i++) pattern[i] = (uint8_t)((i % PERIOD) * 2654435761u >> 13);
    int epoll_fd = epoll_create1(0);
    Connection *all = calloc((size_t)connections, sizeof *all);
    int wave = 64, in_wave = 0;
    char go[16];
    for (int i = 0; i < connections; i++) {
        Connection *c = &all[i];
        c->fd = socket(address->ai_family, SOCK_STREAM, 0);
        /* A server that stops accepting (a full backlog drops SYNs, retried after 1, 3,
         * 7 s...) must not hang us: Linux bounds a blocking connect() by SO_SNDTIMEO. */
        struct timeval patience = {.tv_sec = 10};
        uint64_t connect_started = now_ns();
        setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &patience, sizeof patience);
        if (c->fd < 0 || connect(c->fd, address->ai_addr, address->ai_addrlen) < 0) {
            fprintf(stderr, "connection %d of %d: %s\n", i + 1, connections,
                    errno == EINPROGRESS ? "connect() timed out after 10 s" : strerror(errno));
            return 1;
        }
        int one = 1;
        setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        fcntl(c->fd, F_SETFL, O_NONBLOCK);
        c->seed = (uint32_t)(((uint64_t)i * 7919u) % PERIOD);
        struct epoll_event event = {.events = EPOLLIN, .data.ptr = c};
        epoll_ctl(epoll_fd, EPOLL_CTL_ADD, c->fd, &event);
        /* Connect in waves, and let the driver wait until the server has accepted each
         * (it prints "accept N" and waits for a line): connects faster than the server's
         * accept() overflow its listen backlog (asyncio's is 100, socketserver's 5), the
         * kernel drops the SYN, and the retry comes a second later. After one connect
         * that took that long, the waves shrink below the smallest backlog. */
        if (now_ns() - connect_started > 200000000) wave = 4;
        if (++in_wave >= wave || i == connections - 1) {
            in_wave = 0;
            printf("accept %d\n", i + 1);
            fflush(stdout);
            if (!fgets(go, sizeof go, stdin)) return 1; /* the driver went away */
        }
    }
    printf("connected\n");
    fflush(stdout);
    if (!fgets(go, sizeof go, stdin)) return 1; /* the driver went away */
    measure(epoll_fd, all, active, seconds);
    while (!failure && fgets(go, sizeof go, stdin)) measure(epoll_fd, all, active, seconds);
    while (fgets(go, sizeof go, stdin)) continue; /* hold the connections until stdin closes */
    return failure ? 3 : 0;
}

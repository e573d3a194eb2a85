/* SPDX-License-Identifier: Apache-2.0 */
/*
 * server.c - the listening socket, the accept thread, one thread per
 * connection, connection limits, timeouts and STARTTLS (OpenSSL).
 *
 * The protocol itself is session.c; a connection thread only moves bytes:
 * it reads what is available (up to MR_SMTP_READ_CHUNK), feeds it to the
 * session and writes every reply the batch produced in one write before
 * it blocks on the next read (RFC 2920 section 3.2's flush rule).
 *
 * Waiting is poll() on the client socket and on a wake pipe that becomes
 * readable, for every waiter at once, when mr_smtp_stop begins. Idle and
 * total timeouts are the poll timeout; SO_RCVTIMEO and SO_SNDTIMEO set to
 * the idle timeout bound the calls poll cannot cover (a TLS record that
 * arrives in pieces, a handshake, a client that stops reading replies).
 *
 * Shutdown: the accept thread leaves its loop; a session waiting for a
 * command answers 421 4.3.2 and closes; a session inside DATA reads on to
 * the end marker, delivers, and gets its 421 at the next command. Every
 * thread is joined: finished connections are reaped by the accept thread
 * as it accepts, the rest by mr_smtp_stop.
 *
 * SIGPIPE is blocked in the server's threads rather than ignored process
 * wide: OpenSSL writes with write(2) and cannot pass MSG_NOSIGNAL, and a
 * library must not change the process's signal dispositions.
 */
#include "smtp/smtp.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "smtp/smtp-private.h"
#include "smtp/tls.h"
#include "util/buf.h"
#include "util/clock.h"

#define DEFAULT_MAX_SIZE (50ull << 20)
#define DEFAULT_MAX_RCPT 100
#define DEFAULT_MAX_CONN 100
#define DEFAULT_MAX_PER_IP 20
#define STOP_GRACE_MS 10000 /* DATA in progress at shutdown */
#define DEFAULT_IDLE_S 300
#define DEFAULT_TOTAL_S 1800

struct conn {
    struct conn *next;
    struct mr_smtp_server *srv;
    pthread_t thread;
    int fd;
    char ip[INET6_ADDRSTRLEN];
    bool done; /* the thread has finished its work; guarded by srv->lock */
};

struct mr_smtp_server {
    struct mr__smtp_params params; /* hostname points into `hostname` */
    struct mr_smtp_handler handler;
    char *hostname;
    int max_connections;
    int max_per_ip;
    int idle_s;
    int total_s;
    SSL_CTX *tls; /* NULL: STARTTLS not offered */
    int listen_fd;
    int port;
    int wake[2]; /* a pipe, written once by mr_smtp_stop, never drained */
    atomic_bool stopping;
    _Atomic int64_t stop_at; /* when mr_smtp_stop was called, ms */
    pthread_t accept_thread;
    pthread_mutex_t lock;
    struct conn *conns; /* every connection not yet joined */
    int active;         /* connections whose thread has not finished */
};

static void block_sigpipe(void)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
}

/* ------------------------------------------------------------------ */
/* One connection */

struct io {
    int fd;
    SSL *ssl; /* NULL before STARTTLS */
};

static bool io_write(struct io *io, const char *p, size_t n)
{
    while (n > 0) {
        if (io->ssl != NULL) {
            size_t w = 0;
            if (SSL_write_ex(io->ssl, p, n, &w) != 1)
                return false;
            p += w;
            n -= w;
        } else {
            ssize_t w = send(io->fd, p, n, MSG_NOSIGNAL);
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0)
                return false;
            p += w;
            n -= (size_t)w;
        }
    }
    return true;
}

/* Bytes read, 0 at the end of the stream, -1 on error or timeout. */
static ssize_t io_read(struct io *io, char *buf, size_t n)
{
    if (io->ssl != NULL) {
        size_t got = 0;
        if (SSL_read_ex(io->ssl, buf, n, &got) == 1)
            return (ssize_t)got;
        int e = SSL_get_error(io->ssl, 0);
        return e == SSL_ERROR_ZERO_RETURN ? 0 : -1;
    }
    for (;;) {
        ssize_t r = recv(io->fd, buf, n, 0);
        if (r < 0 && errno == EINTR)
            continue;
        return r;
    }
}

static bool start_tls(struct mr_smtp_server *srv, struct io *io)
{
    SSL *ssl = SSL_new(srv->tls);
    if (ssl == NULL)
        return false;
    if (SSL_set_fd(ssl, io->fd) != 1 || SSL_accept(ssl) != 1) {
        ERR_clear_error();
        SSL_free(ssl);
        return false;
    }
    io->ssl = ssl;
    return true;
}

/* Waits for input. Returns true when the socket is readable; false when
 * the session is over, with the 421 (if any) appended to out. */
static bool wait_input(struct mr_smtp_server *srv, struct conn *c,
                       struct mr__smtp_session *s, struct io *io,
                       int64_t deadline, bool *stop_seen, struct mr_buf *out)
{
    for (;;) {
        /* Bytes already decrypted by OpenSSL are invisible to poll. */
        if (io->ssl != NULL && SSL_pending(io->ssl) > 0)
            return true;
        /* A message in progress at shutdown gets a grace period, not the
         * whole idle timeout: a stalled client must not hold the server's
         * exit for minutes (systemd would kill it first). */
        if (*stop_seen) {
            int64_t grace_end = atomic_load(&srv->stop_at) + STOP_GRACE_MS;
            if (grace_end < deadline)
                deadline = grace_end;
        }
        int64_t left = deadline - mr_clock_mono_ms();
        if (left <= 0) {
            mr__smtp_session_close_reply(s, true, "session time limit", out);
            return false;
        }
        int64_t idle = (int64_t)srv->idle_s * 1000;
        int timeout = (int)(left < idle ? left : idle);
        struct pollfd pfd[2] = {{.fd = c->fd, .events = POLLIN},
                                {.fd = srv->wake[0], .events = POLLIN}};
        int r = poll(pfd, *stop_seen ? 1 : 2, timeout);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return false;
        if (r == 0) {
            mr__smtp_session_close_reply(
                s, true, left <= idle ? "session time limit" : "idle timeout",
                out);
            return false;
        }
        if (!*stop_seen && (pfd[1].revents & POLLIN)) {
            *stop_seen = true;
            /* A message being received is finished first. */
            if (!mr__smtp_session_in_data(s)) {
                mr__smtp_session_close_reply(s, false, "service shutting down",
                                             out);
                return false;
            }
        }
        if (pfd[0].revents & (POLLIN | POLLHUP | POLLERR))
            return true;
    }
}

static void serve_conn(struct mr_smtp_server *srv, struct conn *c)
{
    struct timeval tv = {.tv_sec = srv->idle_s};
    setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    /* Replies are already batched per read; Nagle would only delay them. */
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));

    struct mr__smtp_session *s =
        mr__smtp_session_new(&srv->params, &srv->handler, c->ip);
    struct mr_buf out;
    mr_buf_init(&out, MR_SMTP_OUT_MAX);
    char *in = mr_xmalloc(MR_SMTP_READ_CHUNK);
    struct io io = {.fd = c->fd, .ssl = NULL};
    int64_t deadline = mr_clock_mono_ms() + (int64_t)srv->total_s * 1000;
    bool stop_seen = false;
    bool clean = false;

    mr__smtp_session_greet(s, &out);
    enum mr__smtp_action act = MR__SMTP_CONTINUE;
    for (;;) {
        if (out.len > 0) {
            if (out.limited || !io_write(&io, out.p, out.len))
                break;
            mr_buf_reset(&out);
        }
        if (act == MR__SMTP_CLOSE) {
            clean = true;
            break;
        }
        if (act == MR__SMTP_STARTTLS) {
            if (!start_tls(srv, &io))
                break;
            mr__smtp_session_tls_started(s);
            act = MR__SMTP_CONTINUE;
        }
        if (!wait_input(srv, c, s, &io, deadline, &stop_seen, &out)) {
            act = MR__SMTP_CLOSE;
            continue;
        }
        ssize_t got = io_read(&io, in, MR_SMTP_READ_CHUNK);
        if (got <= 0)
            break;
        act = mr__smtp_session_feed(s, in, (size_t)got, &out);
    }

    if (io.ssl != NULL) {
        if (clean)
            SSL_shutdown(io.ssl);
        ERR_clear_error();
        SSL_free(io.ssl);
    }
    close(c->fd);
    c->fd = -1;
    free(in);
    mr_buf_release(&out);
    mr__smtp_session_free(&s);
}

static void *conn_main(void *arg)
{
    struct conn *c = arg;
    struct mr_smtp_server *srv = c->srv;
    block_sigpipe();
    serve_conn(srv, c);
    pthread_mutex_lock(&srv->lock);
    c->done = true;
    srv->active--;
    pthread_mutex_unlock(&srv->lock);
    return NULL;
}

/* ------------------------------------------------------------------ */
/* Accepting */

static void note(struct mr_smtp_server *srv, const char *what,
                 const char *detail)
{
    if (srv->handler.note != NULL)
        srv->handler.note(srv->handler.ctx, what, detail);
}

static void format_ip(const struct sockaddr_storage *ss, char *ip, size_t n)
{
    snprintf(ip, n, "unknown");
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
        inet_ntop(AF_INET, &a->sin_addr, ip, (socklen_t)n);
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
        /* A dual-stack socket shows IPv4 clients as ::ffff:a.b.c.d; the
         * per-address limit and Received: want the IPv4 form. */
        if (IN6_IS_ADDR_V4MAPPED(&a->sin6_addr))
            inet_ntop(AF_INET, &a->sin6_addr.s6_addr[12], ip, (socklen_t)n);
        else
            inet_ntop(AF_INET6, &a->sin6_addr, ip, (socklen_t)n);
    }
}

/* Joins the connections whose thread has finished. */
static void reap(struct mr_smtp_server *srv)
{
    struct conn *dead = NULL;
    pthread_mutex_lock(&srv->lock);
    for (struct conn **pp = &srv->conns; *pp != NULL;) {
        struct conn *c = *pp;
        if (c->done) {
            *pp = c->next;
            c->next = dead;
            dead = c;
        } else {
            pp = &c->next;
        }
    }
    pthread_mutex_unlock(&srv->lock);
    while (dead != NULL) {
        struct conn *c = dead;
        dead = c->next;
        pthread_join(c->thread, NULL);
        free(c);
    }
}

/* A one-line refusal to a client we will not serve; never blocks. */
static void refuse(struct mr_smtp_server *srv, int fd, const char *enh,
                   const char *why)
{
    char line[512];
    int n = snprintf(line, sizeof(line), "421 %s %s %s\r\n", enh, srv->hostname,
                     why);
    if (n > 0 && (size_t)n < sizeof(line))
        (void)!send(fd, line, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
    line[n > 2 && (size_t)n < sizeof(line) ? n - 2 : 0] = '\0';
    note(srv, "reject", line);
    close(fd);
}

static void admit(struct mr_smtp_server *srv, int fd,
                  const struct sockaddr_storage *ss)
{
    char ip[INET6_ADDRSTRLEN];
    format_ip(ss, ip, sizeof(ip));
    note(srv, "connect", ip);

    struct conn *c = NULL;
    int same_ip = 0;
    pthread_mutex_lock(&srv->lock);
    for (struct conn *o = srv->conns; o != NULL; o = o->next)
        if (!o->done && strcmp(o->ip, ip) == 0)
            same_ip++;
    bool full = srv->active >= srv->max_connections;
    bool ip_full = same_ip >= srv->max_per_ip;
    if (!full && !ip_full) {
        c = mr_xcalloc(1, sizeof(*c));
        c->srv = srv;
        c->fd = fd;
        memcpy(c->ip, ip, sizeof(ip));
        c->next = srv->conns;
        srv->conns = c;
        srv->active++;
    }
    pthread_mutex_unlock(&srv->lock);

    if (full) {
        refuse(srv, fd, "4.7.0", "too many connections, try again later");
        return;
    }
    if (ip_full) {
        refuse(srv, fd, "4.7.0",
               "too many connections from your address, try again later");
        return;
    }
    if (pthread_create(&c->thread, NULL, conn_main, c) != 0) {
        /* Only this thread changes the list, so c is still its head. */
        pthread_mutex_lock(&srv->lock);
        srv->conns = c->next;
        srv->active--;
        pthread_mutex_unlock(&srv->lock);
        free(c);
        refuse(srv, fd, "4.3.2", "cannot start a session, try again later");
    }
}

static void *accept_main(void *arg)
{
    struct mr_smtp_server *srv = arg;
    block_sigpipe();
    for (;;) {
        struct pollfd pfd[2] = {{.fd = srv->listen_fd, .events = POLLIN},
                                {.fd = srv->wake[0], .events = POLLIN}};
        /* The timeout only joins finished sessions when no one connects,
         * so that their threads' stacks are given back. */
        int r = poll(pfd, 2, 1000);
        if (r < 0)
            continue; /* EINTR: nothing else can fail with valid fds */
        if (pfd[1].revents & POLLIN)
            break;
        if (r == 0)
            reap(srv);
        if (!(pfd[0].revents & POLLIN))
            continue;
        struct sockaddr_storage ss;
        socklen_t len = sizeof(ss);
        int fd =
            accept4(srv->listen_fd, (struct sockaddr *)&ss, &len, SOCK_CLOEXEC);
        if (fd < 0) {
            /* Out of descriptors or memory: back off instead of spinning
             * on a listen socket that stays readable. */
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
                errno == ENOMEM)
                poll(&pfd[1], 1, 100);
            continue;
        }
        reap(srv);
        admit(srv, fd, &ss);
    }
    return NULL;
}

/* ------------------------------------------------------------------ */
/* Start and stop */

/* "127.0.0.1:2525", "[::1]:24", "localhost:25", ":2525" (all
 * addresses); port 0 picks a free one. */
static int open_listener(struct mr_smtp_server *srv, const char *addr,
                         struct mr_error *err)
{
    char host[256];
    const char *port;
    size_t hlen;
    if (addr[0] == '[') {
        const char *rb = strchr(addr, ']');
        if (rb == NULL || rb[1] != ':')
            return mr_error_set(err, MR_EINVAL,
                                "listen '%s': expected [ADDRESS]:PORT", addr);
        hlen = (size_t)(rb - addr - 1);
        memcpy(host, addr + 1, hlen < sizeof(host) ? hlen : 0);
        port = rb + 2;
    } else {
        const char *colon = strrchr(addr, ':');
        if (colon == NULL || memchr(addr, ':', (size_t)(colon - addr)))
            return mr_error_set(err, MR_EINVAL,
                                "listen '%s': expected ADDRESS:PORT (IPv6 "
                                "in brackets)",
                                addr);
        hlen = (size_t)(colon - addr);
        memcpy(host, addr, hlen < sizeof(host) ? hlen : 0);
        port = colon + 1;
    }
    if (hlen >= sizeof(host))
        return mr_error_set(err, MR_EINVAL, "listen '%s': address too long",
                            addr);
    host[hlen] = '\0';
    size_t plen = strlen(port);
    long pnum = plen >= 1 && plen <= 5 ? 0 : -1;
    for (size_t i = 0; i < plen && pnum >= 0; i++)
        pnum =
            port[i] >= '0' && port[i] <= '9' ? pnum * 10 + (port[i] - '0') : -1;
    if (pnum < 0 || pnum > 65535)
        return mr_error_set(err, MR_EINVAL, "listen '%s': bad port", addr);

    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *ai = NULL;
    int gai = getaddrinfo(hlen > 0 ? host : NULL, port, &hints, &ai);
    if (gai != 0)
        return mr_error_set(err, MR_EINVAL, "listen '%s': %s", addr,
                            gai_strerror(gai));
    int fd = socket(ai->ai_family,
                    ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        freeaddrinfo(ai);
        return mr_error_set(err, MR_EIO, "listen '%s': socket: %s", addr,
                            strerror(errno));
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 ||
        listen(fd, SOMAXCONN) < 0) {
        int e = errno;
        freeaddrinfo(ai);
        close(fd);
        return mr_error_set(err, MR_EIO, "listen '%s': %s", addr, strerror(e));
    }
    freeaddrinfo(ai);
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    getsockname(fd, (struct sockaddr *)&ss, &len);
    srv->port =
        ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                       : ((struct sockaddr_in *)&ss)->sin_port);
    srv->listen_fd = fd;
    return 0;
}

static int tls_setup(struct mr_smtp_server *srv,
                     const struct mr_smtp_options *opt, struct mr_error *err)
{
    return mr_tls_server_ctx(opt->tls_cert, opt->tls_key, &srv->tls, err);
}

static int check_options(const struct mr_smtp_options *opt,
                         const struct mr_smtp_handler *handler,
                         struct mr_error *err)
{
    if (opt == NULL || handler == NULL || handler->deliver == NULL)
        return mr_error_set(err, MR_EINVAL,
                            "SMTP: options and handler->deliver are required");
    if (opt->listen == NULL || opt->listen[0] == '\0')
        return mr_error_set(err, MR_EINVAL, "SMTP: no listen address");
    if (opt->max_recipients < 0 || opt->max_connections < 0 ||
        opt->max_connections_per_ip < 0 || opt->idle_timeout_s < 0 ||
        opt->total_timeout_s < 0)
        return mr_error_set(err, MR_EINVAL, "SMTP: negative limit");
    /* The DATA buffer holds the whole message: keep it addressable. */
    if (opt->max_message_size > (1ull << 40))
        return mr_error_set(err, MR_EINVAL,
                            "SMTP: max_message_size above 1 TiB");
    if (opt->tls_key != NULL && opt->tls_cert == NULL)
        return mr_error_set(err, MR_EINVAL,
                            "SMTP: TLS key without a "
                            "certificate");
    if (opt->hostname != NULL) {
        size_t n = strlen(opt->hostname);
        bool ok = n > 0 && n <= MR_SMTP_HELO_MAX;
        for (size_t i = 0; i < n && ok; i++)
            ok = (unsigned char)opt->hostname[i] > ' ' &&
                 opt->hostname[i] != 0x7f;
        if (!ok)
            return mr_error_set(err, MR_EINVAL, "SMTP: bad hostname '%s'",
                                opt->hostname);
    }
    return 0;
}

static char *default_hostname(void)
{
    char name[MR_SMTP_HELO_MAX + 1];
    if (gethostname(name, sizeof(name)) != 0 || name[0] == '\0')
        return mr_xstrndup("localhost", 9);
    name[sizeof(name) - 1] = '\0';
    return mr_xstrndup(name, strlen(name));
}

static void server_free(struct mr_smtp_server *srv)
{
    if (srv->listen_fd >= 0)
        close(srv->listen_fd);
    for (int i = 0; i < 2; i++)
        if (srv->wake[i] >= 0)
            close(srv->wake[i]);
    SSL_CTX_free(srv->tls);
    pthread_mutex_destroy(&srv->lock);
    free(srv->hostname);
    free(srv);
}

int mr_smtp_start(const struct mr_smtp_options *opt,
                  const struct mr_smtp_handler *handler,
                  struct mr_smtp_server **out, struct mr_error *err)
{
    *out = NULL;
    int rc = check_options(opt, handler, err);
    if (rc < 0)
        return rc;
    struct mr_smtp_server *srv = mr_xcalloc(1, sizeof(*srv));
    srv->listen_fd = -1;
    srv->wake[0] = srv->wake[1] = -1;
    pthread_mutex_init(&srv->lock, NULL);
    atomic_init(&srv->stopping, false);
    atomic_init(&srv->stop_at, 0);
    srv->handler = *handler;
    srv->hostname = opt->hostname != NULL
                        ? mr_xstrndup(opt->hostname, strlen(opt->hostname))
                        : default_hostname();
    srv->max_connections =
        opt->max_connections > 0 ? opt->max_connections : DEFAULT_MAX_CONN;
    srv->max_per_ip = opt->max_connections_per_ip > 0
                          ? opt->max_connections_per_ip
                          : DEFAULT_MAX_PER_IP;
    srv->idle_s =
        opt->idle_timeout_s > 0 ? opt->idle_timeout_s : DEFAULT_IDLE_S;
    srv->total_s =
        opt->total_timeout_s > 0 ? opt->total_timeout_s : DEFAULT_TOTAL_S;

    if (opt->tls_cert != NULL) {
        rc = tls_setup(srv, opt, err);
        if (rc < 0)
            goto fail;
    }
    srv->params = (struct mr__smtp_params){
        .hostname = srv->hostname,
        .lmtp = opt->lmtp,
        .tls_offered = srv->tls != NULL,
        .max_message_size = opt->max_message_size > 0 ? opt->max_message_size
                                                      : DEFAULT_MAX_SIZE,
        .max_recipients =
            opt->max_recipients > 0 ? opt->max_recipients : DEFAULT_MAX_RCPT,
        .max_errors = MR_SMTP_MAX_ERRORS,
        .stopping = &srv->stopping,
    };
    if (pipe2(srv->wake, O_CLOEXEC) < 0) {
        rc = mr_error_set(err, MR_EIO, "SMTP: pipe: %s", strerror(errno));
        goto fail;
    }
    rc = open_listener(srv, opt->listen, err);
    if (rc < 0)
        goto fail;
    if (pthread_create(&srv->accept_thread, NULL, accept_main, srv) != 0) {
        rc = mr_error_set(err, MR_EIO, "SMTP: cannot start a thread");
        goto fail;
    }
    *out = srv;
    return 0;
fail:
    server_free(srv);
    return rc;
}

int mr_smtp_port(const struct mr_smtp_server *srv)
{
    return srv != NULL ? srv->port : -1;
}

void mr_smtp_stop(struct mr_smtp_server *srv)
{
    if (srv == NULL)
        return;
    atomic_store(&srv->stop_at, mr_clock_mono_ms());
    atomic_store(&srv->stopping, true);
    /* Never drained: every poll on wake[0] sees it from now on. */
    while (write(srv->wake[1], "x", 1) < 0 && errno == EINTR)
        ;
    pthread_join(srv->accept_thread, NULL);
    close(srv->listen_fd);
    srv->listen_fd = -1;
    /* The accept thread is gone, so the list no longer grows. */
    pthread_mutex_lock(&srv->lock);
    struct conn *c = srv->conns;
    srv->conns = NULL;
    pthread_mutex_unlock(&srv->lock);
    while (c != NULL) {
        struct conn *next = c->next;
        pthread_join(c->thread, NULL);
        free(c);
        c = next;
    }
    server_free(srv);
}

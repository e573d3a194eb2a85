/* SPDX-License-Identifier: Apache-2.0 */
/*
 * server.c - libmicrohttpd wiring: the socket, the thread pool, one state
 * per request, the body cap, dispatch to the route table, and turning a
 * mr__http_response into the bytes on the wire.
 *
 * libmicrohttpd calls the access handler several times per request: once
 * when the header is in (we route, authenticate and check the declared
 * size there, so an unauthenticated or oversized upload is refused before
 * its body is read), once per piece of body (appended to a capped
 * mr_buf), and once more with no data when the body is complete (the
 * route's handler runs). Anything answered early makes libmicrohttpd skip
 * the body and close the connection.
 *
 * The daemon runs MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL with a
 * thread pool; handlers may block (the store commits in groups), which
 * only holds the connections of their own thread. libmicrohttpd's error
 * log is off and its logger is routed to a function that drops messages:
 * library code never prints.
 *
 * Live answers (the event stream) must not hold a pool thread while they
 * wait for news: their reader suspends the connection when it has nothing
 * to send, and the hub thread resumes it when the store commits (its
 * commit generation moves) or a tick passes (for heartbeats). The hub
 * lists every live answer under its lock; a connection is suspended only
 * under that lock and only while the hub is not stopping, so mr_http_stop
 * can resume every one of them before MHD_stop_daemon, which forbids
 * suspended connections, and their readers then end the answer.
 */
#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "http/http-private.h"
#include "http/mhd.h"
#include "store/store.h"
#include "util/clock.h"

struct live;

/* The live answers of one server and the thread that wakes them. */
struct live_hub {
    pthread_mutex_t mu;
    pthread_cond_t cv; /* a live answer was added, or stopping */
    struct live *head; /* every live answer, suspended or not */
    size_t n;          /* slots taken (reserved or listed) */
    bool stopping;
    bool running;
    pthread_t thread;
    struct mr_store *store; /* NULL: ticks only */
    const struct mr__mhd *mhd;
};

/* One live answer; owned by libmicrohttpd's response (live_free). */
struct live {
    struct mr__http_stream s;
    struct live_hub *hub;
    struct MHD_Connection *conn;
    bool suspended;    /* under hub->mu */
    uint64_t gen_seen; /* the generation its last empty pull saw */
    int64_t since_ms;  /* when it was suspended (monotonic) */
    struct live *prev, *next;
};

struct mr_http_server {
    struct mr__mhd mhd; /* every libmicrohttpd call goes through it */
    struct MHD_Daemon *daemon;
    int port;
    const struct mr__http_route *routes;
    size_t nroutes;
    mr__http_auth_fn authenticate;
    struct mr__http_ctx ctx;
    struct live_hub *hub;
};

/* One request in flight; lives from the first call of the access handler
 * to the completion callback. */
struct req_state {
    struct mr__http_request req;
    const struct mr__http_route *route;
    struct mr_buf body;
    uint64_t discarded; /* bytes dropped after the cap was passed */
    bool too_large;
    bool answered;
};

/* libmicrohttpd (0.9.x) cannot answer while a body is still arriving. A
 * body over the cap without a declared length (chunked) is therefore read
 * on and dropped, up to this much more, so that the client still gets its
 * 413; past that the connection is closed without an answer. */
#define DISCARD_MAX (1u << 20)

/* ---- accessors --------------------------------------------------------- */

const char *mr__http_header(const struct mr__http_request *req,
                            const char *name)
{
    if (req->conn == NULL)
        return NULL;
    return req->mhd->lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

const char *mr__http_query(const struct mr__http_request *req, const char *name)
{
    if (req->conn == NULL)
        return NULL;
    return req->mhd->lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND,
                                             name);
}

struct query_walk {
    const char *name;
    const char **vals;
    size_t max, n;
    bool more;
};

static enum MHD_Result query_one(void *cls, enum MHD_ValueKind kind,
                                 const char *key, const char *value)
{
    (void)kind;
    struct query_walk *w = cls;
    if (key == NULL || strcmp(key, w->name) != 0)
        return MHD_YES;
    if (w->n == w->max) {
        w->more = true;
        return MHD_NO;
    }
    w->vals[w->n++] = value ? value : "";
    return MHD_YES;
}

size_t mr__http_query_all(const struct mr__http_request *req, const char *name,
                          const char **vals, size_t max, bool *more)
{
    struct query_walk w = {name, vals, max, 0, false};
    if (req->conn != NULL)
        req->mhd->get_connection_values(req->conn, MHD_GET_ARGUMENT_KIND,
                                        query_one, &w);
    if (more)
        *more = w.more;
    return w.n;
}

/* ---- answering --------------------------------------------------------- */

/* Downloads: libmicrohttpd asks for the next piece when the socket has
 * room, so a large blob goes out without being copied whole. */
#define STREAM_BLOCK (64u << 10)

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    struct mr__http_stream *s = cls;
    if (pos >= s->size)
        return MHD_CONTENT_READER_END_OF_STREAM;
    size_t n = s->read(s->cls, pos, buf, max);
    return n == 0 ? MHD_CONTENT_READER_END_WITH_ERROR : (ssize_t)n;
}

static void stream_free(void *cls)
{
    struct mr__http_stream *s = cls;
    if (s->done)
        s->done(s->cls);
    free(s);
}

/* ---- live answers ------------------------------------------------------ */

#define LIVE_BLOCK (16u << 10)

static ssize_t live_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    struct live *lv = cls;
    struct live_hub *h = lv->hub;
    uint64_t gen = h->store ? mr_store_commit_gen(h->store) : 0;
    pthread_mutex_lock(&h->mu);
    bool stopping = h->stopping;
    pthread_mutex_unlock(&h->mu);
    long n = lv->s.pull(lv->s.cls, buf, max, gen, stopping);
    if (n > 0)
        return (ssize_t)((size_t)n > max ? max : (size_t)n);
    if (n < 0 || stopping)
        return MHD_CONTENT_READER_END_OF_STREAM;
    pthread_mutex_lock(&h->mu);
    if (h->stopping) {
        pthread_mutex_unlock(&h->mu);
        return MHD_CONTENT_READER_END_OF_STREAM;
    }
    lv->gen_seen = gen;
    lv->since_ms = mr_clock_mono_ms();
    lv->suspended = true;
    h->mhd->suspend_connection(lv->conn);
    pthread_mutex_unlock(&h->mu);
    return 0;
}

static void live_free(void *cls)
{
    struct live *lv = cls;
    struct live_hub *h = lv->hub;
    pthread_mutex_lock(&h->mu);
    if (lv->prev)
        lv->prev->next = lv->next;
    else if (h->head == lv)
        h->head = lv->next;
    if (lv->next)
        lv->next->prev = lv->prev;
    h->n--;
    pthread_mutex_unlock(&h->mu);
    if (lv->s.done)
        lv->s.done(lv->s.cls);
    free(lv);
}

/* Takes a slot for a live answer; false when all are taken or the
 * server is stopping. */
static bool live_reserve(struct live_hub *h)
{
    pthread_mutex_lock(&h->mu);
    bool ok = !h->stopping && h->n < MR__HTTP_LIVE_MAX;
    if (ok)
        h->n++;
    pthread_mutex_unlock(&h->mu);
    return ok;
}

static void *hub_main(void *arg)
{
    struct live_hub *h = arg;
    uint64_t gen = h->store ? mr_store_commit_gen(h->store) : 0;
    for (;;) {
        pthread_mutex_lock(&h->mu);
        while (!h->stopping && h->head == NULL)
            pthread_cond_wait(&h->cv, &h->mu);
        bool stop = h->stopping;
        pthread_mutex_unlock(&h->mu);
        if (stop)
            break;
        /* Bounded waits, so that stopping and the ticks are noticed. */
        if (h->store) {
            gen = mr_store_commit_wait(h->store, gen, 200);
        } else {
            struct timespec d = {0, 200 * 1000000L};
            nanosleep(&d, NULL);
        }
        int64_t now = mr_clock_mono_ms();
        pthread_mutex_lock(&h->mu);
        for (struct live *lv = h->head; lv != NULL; lv = lv->next) {
            if (lv->suspended &&
                (lv->gen_seen != gen ||
                 now - lv->since_ms >= MR__HTTP_LIVE_TICK_MS)) {
                lv->suspended = false;
                h->mhd->resume_connection(lv->conn);
            }
        }
        pthread_mutex_unlock(&h->mu);
    }
    return NULL;
}

/* Stops the hub thread and resumes every suspended live answer; after
 * this no live answer suspends again, and each ends at its next read. */
static void hub_stop(struct live_hub *h)
{
    pthread_mutex_lock(&h->mu);
    h->stopping = true;
    for (struct live *lv = h->head; lv != NULL; lv = lv->next) {
        if (lv->suspended) {
            lv->suspended = false;
            h->mhd->resume_connection(lv->conn);
        }
    }
    pthread_cond_broadcast(&h->cv);
    pthread_mutex_unlock(&h->mu);
    if (h->running) {
        pthread_join(h->thread, NULL);
        h->running = false;
    }
}

static void hub_free(struct live_hub *h)
{
    hub_stop(h);
    pthread_mutex_destroy(&h->mu);
    pthread_cond_destroy(&h->cv);
    free(h);
}

static bool has_header(const struct mr__http_response *resp, const char *name)
{
    for (size_t i = 0; i < resp->nheaders; i++)
        if (strcasecmp(resp->headers[i].name, name) == 0)
            return true;
    return false;
}

static enum MHD_Result send_response(const struct mr__mhd *mhd,
                                     struct live_hub *hub,
                                     struct MHD_Connection *conn,
                                     struct mr__http_response *resp)
{
    size_t len = 0;
    char *p = mr_buf_detach(&resp->body, &len);
    struct MHD_Response *r;
    bool no_body = resp->status == 204 || resp->content_type == NULL;
    if (!no_body && resp->stream.pull) {
        free(p);
        /* The slot was reserved by answer(); live_free gives it back. */
        struct live *lv = mr_xcalloc(1, sizeof *lv);
        lv->s = resp->stream;
        memset(&resp->stream, 0, sizeof resp->stream);
        lv->hub = hub;
        lv->conn = conn;
        pthread_mutex_lock(&hub->mu);
        lv->next = hub->head;
        if (hub->head)
            hub->head->prev = lv;
        hub->head = lv;
        pthread_cond_broadcast(&hub->cv);
        pthread_mutex_unlock(&hub->mu);
        r = mhd->create_response_from_callback(MHD_SIZE_UNKNOWN, LIVE_BLOCK,
                                               live_read, lv, live_free);
        if (r == NULL)
            live_free(lv);
    } else if (!no_body && resp->stream.read) {
        free(p);
        /* The stream now belongs to libmicrohttpd, which calls
         * stream_free once the response is destroyed. */
        struct mr__http_stream *s = mr_xmalloc(sizeof *s);
        *s = resp->stream;
        memset(&resp->stream, 0, sizeof resp->stream);
        r = mhd->create_response_from_callback(s->size, STREAM_BLOCK,
                                               stream_read, s, stream_free);
        if (r == NULL)
            stream_free(s);
    } else if (no_body || len == 0) {
        free(p);
        r = mhd->create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
    } else {
        r = mhd->create_response_from_buffer_with_free_callback(len, p, free);
        if (r == NULL)
            free(p);
    }
    if (r == NULL)
        return MHD_NO;
    if (!no_body)
        mhd->add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
                                resp->content_type);
    /* API answers are per token and change with every message: no cache
     * may keep them, and no browser may guess their type. A handler may
     * say otherwise (an inline image may be kept by the browser). */
    if (!has_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL))
        mhd->add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    if (!has_header(resp, "X-Content-Type-Options"))
        mhd->add_response_header(r, "X-Content-Type-Options", "nosniff");
    for (size_t i = 0; i < resp->nheaders; i++)
        mhd->add_response_header(r, resp->headers[i].name,
                                resp->headers[i].value);
    enum MHD_Result ret = mhd->queue_response(conn, (unsigned)resp->status, r);
    mhd->destroy_response(r);
    return ret;
}

/* The channel counters of a message route, in one place for every
 * answer, early ones (401, 413, 415) included. */
static void count(const struct mr__http_ctx *ctx,
                  const struct mr__http_route *rt, int status)
{
    struct mr_metrics *m = ctx->deps.metrics;
    if (m == NULL || rt == NULL || !rt->counted ||
        (unsigned)rt->channel >= MR_CH_COUNT)
        return;
    /* A route that is switched off (the webhook without a secret) is not
     * a way in at all. */
    if (status == 404)
        return;
    mr_metrics_inc(&m->received[rt->channel]);
    if (status >= 200 && status < 300)
        mr_metrics_inc(&m->acked[rt->channel]);
    else if (status == 503)
        mr_metrics_inc(&m->tempfail[rt->channel]);
    else
        mr_metrics_inc(&m->rejected[rt->channel]);
}

/* Queues resp (releasing it) and remembers that the request is answered. */
static enum MHD_Result answer(const struct mr_http_server *srv,
                              struct req_state *st,
                              struct mr__http_response *resp)
{
    if (resp->stream.pull && !live_reserve(srv->hub)) {
        if (resp->stream.done)
            resp->stream.done(resp->stream.cls);
        memset(&resp->stream, 0, sizeof resp->stream);
        mr__http_problem(resp, 503,
                         "too many live streams are open (at most %d), or "
                         "the server is stopping",
                         MR__HTTP_LIVE_MAX);
        mr__http_header_add(resp, "Retry-After", "5");
    }
    count(&srv->ctx, st->route, resp->status);
    enum MHD_Result ret =
        send_response(st->req.mhd, srv->hub, st->req.conn, resp);
    mr__http_response_release(resp);
    st->answered = true;
    return ret;
}

/* ---- the header stage -------------------------------------------------- */

static void client_ip(const struct mr__mhd *mhd, struct MHD_Connection *conn,
                      char *out, size_t size)
{
    out[0] = '\0';
    const union MHD_ConnectionInfo *ci =
        mhd->get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (ci == NULL || ci->client_addr == NULL)
        return;
    const struct sockaddr *sa = ci->client_addr;
    socklen_t len = sa->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                              : sizeof(struct sockaddr_in);
    if (getnameinfo(sa, len, out, (socklen_t)size, NULL, 0, NI_NUMERICHOST) !=
        0)
        out[0] = '\0';
}

/* Declared length over the cap: refuse before reading a byte. A value that
 * is not a number is left to libmicrohttpd, which answers 400 itself. */
static bool declared_too_large(const struct mr__mhd *mhd,
                               struct MHD_Connection *conn, uint64_t cap)
{
    const char *cl = mhd->lookup_connection_value(
        conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (cl == NULL)
        return false;
    uint64_t v = 0;
    for (const char *p = cl; *p; p++) {
        if (*p < '0' || *p > '9')
            return false;
        if (v > (UINT64_MAX - 9) / 10)
            return true;
        v = v * 10 + (uint64_t)(*p - '0');
    }
    return v > cap;
}

static void too_large(struct mr__http_response *resp, uint64_t cap)
{
    mr__http_problem(resp, 413, "request body is over the limit of %llu bytes",
                     (unsigned long long)cap);
}

/* Runs every check that needs only the header. Returns true when resp
 * holds the answer. */
static bool header_stage(struct mr_http_server *srv, struct req_state *st,
                         struct mr__http_response *resp)
{
    struct mr__http_request *req = &st->req;
    char allow[64];
    enum mr__http_match m =
        mr__http_route_find(srv->routes, srv->nroutes, req->method, req->path,
                            &st->route, &req->id, allow, sizeof allow);
    if (m == MR__HTTP_NOT_FOUND) {
        mr__http_problem(resp, 404, "no resource at this path");
        return true;
    }
    if (m == MR__HTTP_BAD_METHOD) {
        mr__http_problem(resp, 405, "%s is not allowed here; use %s",
                         req->method, allow);
        mr__http_header_add(resp, "Allow", "%s", allow);
        return true;
    }
    const struct mr__http_route *rt = st->route;

    if (rt->roles != 0) {
        struct mr_error err = {0};
        const char *authz = mr__http_header(req, "Authorization");
        int rc =
            srv->authenticate
                ? srv->authenticate(&srv->ctx, authz, &req->principal, &err)
                : mr_error_set(&err, MR_EIO, "no authenticator");
        if (rc == MR_EINVAL || rc == MR_ENOTFOUND) {
            mr__http_problem(resp, 401, "%s", err.msg);
            /* RFC 6750 3: say which scheme, and that a token presented
             * was not good. */
            if (authz == NULL)
                mr__http_header_add(resp, "WWW-Authenticate",
                                    "Bearer realm=\"mailroom\"");
            else
                mr__http_header_add(resp, "WWW-Authenticate",
                                    "Bearer realm=\"mailroom\", "
                                    "error=\"invalid_token\"");
            return true;
        }
        if (rc < 0) {
            mr__http_problem_err(&srv->ctx, resp, &err);
            return true;
        }
        if ((req->principal.role & rt->roles) == 0) {
            const char *name = mr_auth_role_name(req->principal.role);
            mr__http_problem(resp, 403, "a token with role '%s' may not %s %s",
                             name ? name : "?", rt->method, rt->pattern);
            return true;
        }
    }

    if (rt->content_type != NULL &&
        !mr__http_media_type_is(mr__http_header(req, "Content-Type"),
                                rt->content_type)) {
        mr__http_problem(resp, 415, "Content-Type must be %s",
                         rt->content_type);
        return true;
    }

    if (rt->early) {
        rt->early(&srv->ctx, req, resp);
        if (resp->status != 0)
            return true;
    }

    if (declared_too_large(&srv->mhd, req->conn, srv->ctx.body_cap)) {
        too_large(resp, srv->ctx.body_cap);
        return true;
    }
    return false;
}

/* ---- the access handler ------------------------------------------------ */

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn,
                                  const char *url, const char *method,
                                  const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    (void)version;
    struct mr_http_server *srv = cls;
    struct req_state *st = *con_cls;

    if (st == NULL) {
        st = mr_xcalloc(1, sizeof *st);
        *con_cls = st;
        mr_buf_init(&st->body, (size_t)srv->ctx.body_cap);
        st->req.method = method;
        st->req.path = url;
        st->req.conn = conn;
        st->req.mhd = &srv->mhd;
        st->req.body = "";
        client_ip(&srv->mhd, conn, st->req.remote_ip,
                  sizeof st->req.remote_ip);
        if (srv->ctx.deps.metrics)
            mr_metrics_inc(&srv->ctx.deps.metrics->http_requests);

        struct mr__http_response resp;
        mr__http_response_init(&resp);
        if (header_stage(srv, st, &resp))
            return answer(srv, st, &resp);
        mr__http_response_release(&resp);
        return MHD_YES;
    }

    if (st->answered) {
        /* Answered early: whatever body still arrives is dropped. */
        *upload_data_size = 0;
        return MHD_YES;
    }

    if (*upload_data_size != 0) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (st->too_large) {
            st->discarded += n;
            return st->discarded > DISCARD_MAX ? MHD_NO : MHD_YES;
        }
        if (mr_buf_append(&st->body, upload_data, n) == 0)
            return MHD_YES;
        st->too_large = true;
        mr_buf_release(&st->body);
        return MHD_YES;
    }

    struct mr__http_response resp;
    mr__http_response_init(&resp);
    if (st->too_large) {
        too_large(&resp, srv->ctx.body_cap);
        return answer(srv, st, &resp);
    }
    st->req.body = st->body.p ? st->body.p : "";
    st->req.body_len = st->body.len;
    st->route->handle(&srv->ctx, &st->req, &resp);
    if (resp.status == 0)
        mr__http_problem(&resp, 500, "the handler gave no answer");
    return answer(srv, st, &resp);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)conn;
    (void)toe;
    struct req_state *st = *con_cls;
    if (st == NULL)
        return;
    mr_buf_release(&st->body);
    free(st);
    *con_cls = NULL;
}

static void no_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    (void)fmt;
    (void)ap;
}

/* ---- start and stop ---------------------------------------------------- */

static int bind_socket(const char *addr, int *fd_r, int *port_r, bool *v6_r,
                       struct mr_error *err)
{
    struct sockaddr_storage sa;
    socklen_t salen;
    int rc = mr__http_parse_listen(addr, &sa, &salen, err);
    if (rc < 0)
        return rc;
    int fd = socket(sa.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return mr_error_set(err, MR_EIO, "socket: %s", strerror(errno));
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&sa, salen) != 0) {
        int e = errno;
        close(fd);
        return mr_error_set(err, MR_EIO, "cannot listen on %s: %s", addr,
                            strerror(e));
    }
    if (listen(fd, 128) != 0) {
        int e = errno;
        close(fd);
        return mr_error_set(err, MR_EIO, "listen on %s: %s", addr, strerror(e));
    }
    struct sockaddr_storage got;
    socklen_t glen = sizeof got;
    int port = 0;
    if (getsockname(fd, (struct sockaddr *)&got, &glen) == 0) {
        if (got.ss_family == AF_INET6)
            port = ntohs(((struct sockaddr_in6 *)&got)->sin6_port);
        else
            port = ntohs(((struct sockaddr_in *)&got)->sin_port);
    }
    *fd_r = fd;
    *port_r = port;
    *v6_r = sa.ss_family == AF_INET6;
    return 0;
}

int mr__http_serve(const struct mr__http_serve_options *o,
                   struct mr_http_server **out, struct mr_error *err)
{
    *out = NULL;
    if (o->routes == NULL || o->nroutes == 0)
        return mr_error_set(err, MR_EINVAL, "no routes");
    if (o->ctx.body_cap == 0)
        return mr_error_set(err, MR_EINVAL, "no body size limit");
    int fd, port;
    bool v6;
    int rc = bind_socket(o->listen, &fd, &port, &v6, err);
    if (rc < 0)
        return rc;

    struct mr_http_server *srv = mr_xcalloc(1, sizeof *srv);
    srv->port = port;
    srv->routes = o->routes;
    srv->nroutes = o->nroutes;
    srv->authenticate = o->authenticate;
    srv->ctx = o->ctx;

    unsigned threads =
        (unsigned)(o->threads > 0 ? o->threads : MR_HTTP_THREADS_DEFAULT);
    unsigned limit =
        (unsigned)(o->connection_limit > 0 ? o->connection_limit : 100);
    unsigned timeout =
        (unsigned)(o->connection_timeout_s > 0 ? o->connection_timeout_s : 60);
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL |
                     MHD_USE_ITC | MHD_ALLOW_SUSPEND_RESUME;
    if (v6)
        flags |= MHD_USE_IPv6;
    /* The daemon gets its own descriptor: whether libmicrohttpd closes a
     * given socket when it fails to start differs between versions, and
     * closing one twice could close another thread's file. */
    int mhd_fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (mhd_fd < 0) {
        int e = errno;
        close(fd);
        free(srv);
        return mr_error_set(err, MR_EIO, "dup: %s", strerror(e));
    }
    /* The logger comes first so that nothing is printed even while the
     * daemon starts. */
    rc = mr__mhd_load(&srv->mhd, err);
    if (rc < 0) {
        close(fd);
        close(mhd_fd);
        free(srv);
        return rc;
    }
    srv->hub = mr_xcalloc(1, sizeof *srv->hub);
    pthread_mutex_init(&srv->hub->mu, NULL);
    pthread_cond_init(&srv->hub->cv, NULL);
    srv->hub->store = srv->ctx.deps.store;
    srv->hub->mhd = &srv->mhd;
    if (pthread_create(&srv->hub->thread, NULL, hub_main, srv->hub) == 0)
        srv->hub->running = true;
    else
        srv->hub->stopping = true; /* no live answers without the hub */
    srv->daemon = srv->mhd.start_daemon(
        flags, 0, NULL, NULL, on_request, srv, MHD_OPTION_EXTERNAL_LOGGER,
        no_log, NULL, MHD_OPTION_LISTEN_SOCKET, mhd_fd,
        MHD_OPTION_THREAD_POOL_SIZE, threads, MHD_OPTION_CONNECTION_LIMIT,
        limit, MHD_OPTION_CONNECTION_TIMEOUT, timeout,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL, MHD_OPTION_END);
    close(fd);
    if (srv->daemon == NULL) {
        hub_free(srv->hub);
        mr__mhd_unload(&srv->mhd);
        free(srv);
        return mr_error_set(err, MR_EIO, "the HTTP daemon did not start on %s",
                            o->listen);
    }
    *out = srv;
    return 0;
}

int mr_http_port(const struct mr_http_server *srv)
{
    return srv ? srv->port : 0;
}

void mr_http_stop(struct mr_http_server *srv)
{
    if (srv == NULL)
        return;
    /* Stops the listener, waits for the pool's threads (and so for every
     * handler in flight), closes connections and the listen socket. */
    hub_stop(srv->hub);
    srv->mhd.stop_daemon(srv->daemon);
    hub_free(srv->hub);
    mr__mhd_unload(&srv->mhd);
    mr__http_health_cache_free(srv->ctx.health);
    free(srv);
}

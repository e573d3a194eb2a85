/* SPDX-License-Identifier: Apache-2.0 */
/*
 * smtp_load: a bounded SMTP/LMTP load generator, for `make bench-ingest`
 * and the crash test.
 *
 *   smtp_load --host H --port P [--connections 8] [--count 5000]
 *             [--size 3000] [--rcpt ADDR]... [--seed N] [--timeout-s 120]
 *             [--io-timeout-s 30] [--acked FILE] [--lmtp]
 *
 * N threads, one connection each, share a counter of message slots and
 * send until --count messages have been tried or --timeout-s has passed.
 * Each connection speaks as an MTA relaying to us would: EHLO (LHLO with
 * --lmtp), then per message MAIL FROM, RCPT TO... and DATA in ONE write
 * when the server offers PIPELINING (RFC 2920), the replies, the message
 * and its final dot, the final reply (one per accepted recipient under
 * LMTP), and the next message on the same connection with no RSET: a
 * completed DATA already ends the transaction (RFC 5321 4.1.1.4). RSET is
 * sent only after a transaction that was opened and then refused.
 *
 * The latency of a message is from the write that carries its final dot
 * to its last final reply: the time the server takes to make it durable
 * and say so. Percentiles are over acknowledged messages.
 *
 * A server that closes the connection or dies is not fatal: a message
 * under way is counted as unanswered (it may or may not have been stored,
 * as for a real MTA), the error is counted, and the thread reconnects with
 * a growing pause until the count or the time is used up; the crash test
 * kills the server under this tool on purpose. (A message none of which
 * was sent yet when a used connection turned out closed is simply sent on
 * the next one: see OUT_RETRY.) Every message has its own
 * Message-ID, <load-SEED-CONN-SEQ@bench.mailroom.invalid> (CONN the thread,
 * SEQ its running number), and with --acked the id of each message
 * answered 2xx at end of DATA is appended to FILE as one line, without the
 * angle brackets, by a single write(2) on an O_APPEND descriptor, so the
 * file is complete up to the last acknowledgement even if this tool is
 * killed. A fixed --seed sends the same ids again: a server that has seen
 * them counts duplicates; without --seed one is taken from the clock.
 *
 * Prints one JSON object on stdout; sent = acked + tempfail + rejected +
 * unanswered. Exit status 0 when it ran (whatever the server did), 1 when
 * it could not start (address, --acked file), 2 for bad usage.
 *
 * libc and pthreads only, so the bench can build it with a plain
 * `cc -O2 -pthread`.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONNECTIONS 1024
#define MAX_RCPT 32
#define MAX_COUNT 100000000L
#define MIN_SIZE 1024 /* the headers alone take about 1.1 KB */
#define MAX_SIZE (50L * 1024 * 1024)
#define RBUF_SIZE 4096      /* a reply line longer than this is garbage */
#define MAX_REPLY_LINES 100 /* lines in one multi-line reply */
#define MAX_ERRORS_SHOWN 20 /* on stderr; all are counted */
#define MAIL_FROM "bounces@load.bench.mailroom.invalid"
#define HELO_NAME "load.bench.mailroom.invalid"
#define ID_DOMAIN "bench.mailroom.invalid"

struct opts {
    const char *host;
    const char *port;
    int connections;
    long count;
    long size;
    const char *rcpt[MAX_RCPT];
    int nrcpt;
    uint64_t seed;
    double timeout_s;
    double io_timeout_s;
    const char *acked_path;
    bool lmtp;
    long reply_pct; /* share of messages that answer an earlier one */
};

/* What all threads share: read-only after start, except the atomics. */
struct shared {
    const struct opts *o;
    struct addrinfo *ai;
    double start;    /* monotonic seconds */
    double deadline; /* start + timeout */
    int acked_fd;    /* -1 without --acked */
    atomic_long next_slot;
    atomic_int errors_shown;
};

/* A growable byte string; aborts on out-of-memory like mailroom's. */
struct str {
    char *p;
    size_t len, cap;
};

struct worker {
    struct shared *sh;
    int idx;
    pthread_t tid;
    uint64_t rng;
    long seq;

    long sent, acked, tempfail, rejected, unanswered;
    long errors, connect_errors, connects, bytes;
    double done_at; /* monotonic time of its last transaction's end */
    float *lat_ms;  /* acknowledged messages' latencies */
    size_t nlat, lat_cap;

    int fd; /* -1 when not connected */
    bool pipelining, size_ext;
    char rbuf[RBUF_SIZE];
    size_t rlen;

    struct str msg, cmd;
    char mid[128];        /* this message's id, no brackets */
    char thread_mid[128]; /* the message a reply answers, "" for none */
    char refs[1024];      /* References of the current conversation */
    char subject[160];    /* its subject */
    char why[256];        /* the last thing that went wrong */
    int txns_on_conn;     /* transactions on this connection so far */
    int thread_len;
    unsigned first, last, cust; /* its customer */
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (q == NULL) {
        fputs("smtp_load: out of memory\n", stderr);
        abort();
    }
    return q;
}

static void str_add(struct str *s, const char *p, size_t n)
{
    if (s->len + n + 1 > s->cap) {
        size_t cap = s->cap ? s->cap : 4096;
        while (cap < s->len + n + 1)
            cap *= 2;
        s->p = xrealloc(s->p, cap);
        s->cap = cap;
    }
    memcpy(s->p + s->len, p, n);
    s->len += n;
    s->p[s->len] = '\0';
}

static void str_printf(struct str *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void str_printf(struct str *s, const char *fmt, ...)
{
    char tmp[2048];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    str_add(s, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

/* xorshift64*: fast, per thread, and the same sequence for the same seed */
static uint64_t rnd(struct worker *w)
{
    w->rng ^= w->rng >> 12;
    w->rng ^= w->rng << 25;
    w->rng ^= w->rng >> 27;
    return w->rng * 2685821657736338717ULL;
}

static unsigned rnd_below(struct worker *w, unsigned n)
{
    return (unsigned)((rnd(w) >> 32) % n);
}

/* What went wrong last on this connection. The I/O helpers only say
 * why; whether it is an error to count is the caller's call (a hang-up
 * before a message was sent only means "send it again"). */
static void set_why(struct worker *w, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void set_why(struct worker *w, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(w->why, sizeof w->why, fmt, ap);
    va_end(ap);
}

/* Counts the error in w->why, and shows the first few on stderr. */
static void note_error(struct worker *w)
{
    w->errors++;
    int shown = atomic_fetch_add(&w->sh->errors_shown, 1);
    if (shown > MAX_ERRORS_SHOWN)
        return;
    if (shown == MAX_ERRORS_SHOWN) {
        fputs("smtp_load: more errors, counted but not shown\n", stderr);
        return;
    }
    fprintf(stderr, "smtp_load: connection %d: %s\n", w->idx, w->why);
}

/* ---- the message ------------------------------------------------------- */

/* clang-format off */
static const char *const words[] = {
    "account", "password", "reset", "invoice", "order", "shipping",
    "delivery", "refund", "login", "error", "page", "settings", "export",
    "report", "billing", "plan", "upgrade", "team", "member", "access",
    "please", "could", "you", "help", "me", "with", "the", "this", "that",
    "when", "I", "we", "tried", "again", "yesterday", "today", "still",
    "not", "working", "after", "update", "browser", "mobile", "app",
    "crashes", "on", "start", "screen", "blank", "customer", "number",
    "attached", "screenshot", "thanks", "for", "your", "quick", "reply",
    "but", "problem", "is", "back", "since", "Monday", "morning", "our",
    "office", "uses", "a", "shared", "mailbox", "and", "nobody", "receives",
    "notifications", "anymore", "can", "check", "what", "changed", "in",
    "configuration", "it", "worked", "fine", "last", "week", "urgent",
    "deadline", "Friday",
};
/* clang-format on */
#define NWORDS (sizeof words / sizeof words[0])

/* A customer's first name: in the (7bit) signature, in the From: header
 * (RFC 2047 where it is not ASCII, as mail clients do) and in an address. */
static const struct {
    const char *plain, *header, *local;
} first_names[] = {
    {"Anna", "Anna", "anna"},
    {"Bruno", "Bruno", "bruno"},
    {"Chloe", "=?utf-8?q?Chlo=C3=A9?=", "chloe"},
    {"Dmitri", "Dmitri", "dmitri"},
    {"Emma", "Emma", "emma"},
    {"Farid", "Farid", "farid"},
    {"Grace", "Grace", "grace"},
    {"Hiro", "Hiro", "hiro"},
    {"Ines", "=?utf-8?q?In=C3=A8s?=", "ines"},
    {"Jonas", "Jonas", "jonas"},
    {"Kara", "Kara", "kara"},
    {"Luca", "Luca", "luca"},
    {"Mia", "Mia", "mia"},
    {"Noah", "Noah", "noah"},
    {"Olga", "Olga", "olga"},
    {"Pedro", "Pedro", "pedro"},
};
#define NFIRST (sizeof first_names / sizeof first_names[0])
static const char *const last_names[] = {
    "Schmidt", "Martin", "Rossi", "Novak",  "Kowalski", "Garcia", "Dubois",
    "Jensen",  "Tanaka", "Silva", "Okafor", "Larsen",   "Moreau", "Weber",
};
#define NLAST (sizeof last_names / sizeof last_names[0])

/* A subject is before + a number + after, or before alone. */
static const struct {
    const char *before, *after;
} subjects[] = {
    {"Cannot log in to my account", NULL},
    {"Invoice 2024-", " is wrong"},
    {"Order #", " has not arrived"},
    {"Password reset link expired", NULL},
    {"Export to CSV fails with an error", NULL},
    {"Question about upgrading our plan", NULL},
    {"App crashes on start after update", NULL},
    {"Refund for order ", ""},
    {"Notifications no longer arrive", NULL},
    {"Access for a new team member", NULL},
};
#define NSUBJECTS (sizeof subjects / sizeof subjects[0])

static const char *const mailers[] = {
    "Microsoft Outlook 16.0",
    "Apple Mail (2.3731.700.6)",
    "Mozilla Thunderbird 115.6.0",
    "Roundcube Webmail/1.6.5",
};

/* Appends one line of the message as it goes on the wire: CRLF ended and
 * dot-stuffed (RFC 5321 4.5.2). */
static void line(struct worker *w, const char *p, size_t n)
{
    if (n > 0 && p[0] == '.')
        str_add(&w->msg, ".", 1);
    str_add(&w->msg, p, n);
    str_add(&w->msg, "\r\n", 2);
}

static void linef(struct worker *w, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void linef(struct worker *w, const char *fmt, ...)
{
    char tmp[1200];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    line(w, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

static void b64_noise(struct worker *w, char *out, size_t n)
{
    static const char a[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
        "0123456789+/";
    for (size_t i = 0; i < n; i++)
        out[i] = a[rnd_below(w, 64)];
    out[n] = '\0';
}

/* A paragraph of words, wrapped at 72 columns, prefixed (quote marks). */
static void paragraph(struct worker *w, const char *prefix, unsigned nwords)
{
    char buf[128];
    size_t plen = strlen(prefix);
    size_t len = 0;
    memcpy(buf, prefix, plen);
    len = plen;
    for (unsigned i = 0; i < nwords; i++) {
        const char *word = words[rnd_below(w, NWORDS)];
        size_t wl = strlen(word);
        if (len > plen && len + 1 + wl > 72) {
            line(w, buf, len);
            len = plen;
        }
        if (len > plen)
            buf[len++] = ' ';
        memcpy(buf + len, word, wl);
        if (i == 0 && buf[len] >= 'a' && buf[len] <= 'z')
            buf[len] = (char)(buf[len] - 'a' + 'A');
        len += wl;
    }
    buf[len++] = '.';
    line(w, buf, len);
}

/* Builds message number w->seq into w->msg, wire-ready, ending in the
 * final dot. --reply-percent of the messages (a third by default) answer
 * the previous one of their connection (In-Reply-To, References, "Re:" and a quote), so that the
 * threading step has conversations to follow; one in ten has a body line
 * starting with a dot, so that dot-stuffing is exercised. */
static void build_message(struct worker *w)
{
    const struct opts *o = w->sh->o;
    long target = o->size * (80 + (long)rnd_below(w, 41)) / 100;
    bool reply = w->thread_mid[0] != '\0' && w->thread_len < 30 &&
                 (long)rnd_below(w, 100) < o->reply_pct;

    w->msg.len = 0;
    snprintf(w->mid, sizeof w->mid, "load-%" PRIu64 "-%d-%ld@" ID_DOMAIN,
             o->seed, w->idx, w->seq);
    if (!reply) {
        unsigned k = rnd_below(w, NSUBJECTS);
        if (subjects[k].after)
            snprintf(w->subject, sizeof w->subject, "%s%u%s",
                     subjects[k].before, 10000 + rnd_below(w, 90000),
                     subjects[k].after);
        else
            snprintf(w->subject, sizeof w->subject, "%s", subjects[k].before);
        w->refs[0] = '\0';
        w->thread_len = 0;
    }

    if (!reply) {
        w->first = rnd_below(w, NFIRST);
        w->last = rnd_below(w, NLAST);
        w->cust = rnd_below(w, 500);
    }
    unsigned cust = w->cust;
    const char *last = last_names[w->last];
    char local[64];
    snprintf(local, sizeof local, "%s.%s", first_names[w->first].local, last);
    for (char *p = local; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    /* The Date is the message's, not the sending's: a function of the
     * seed and the message, so a second run with the same seed sends the
     * very same messages again (a sender's retry or a duplicate delivery),
     * which the server must recognise as such. */
    char date[64];
    time_t t = (time_t)1767225600 /* 2026-01-01 */ +
               (time_t)(o->seed % 100000) * 60 + (time_t)w->idx * 86400 / 64 +
               (time_t)w->seq * 7;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S +0000", &tm);
    char noise[200];

    linef(w,
          "Received: from mail-%u.customer%u.example "
          "(mail-%u.customer%u.example [198.51.100.%u])",
          rnd_below(w, 90), cust, rnd_below(w, 90), cust,
          1 + rnd_below(w, 250));
    linef(w, "\tby mx1.relay.example (Postfix) with ESMTPS id %08" PRIx64,
          rnd(w) >> 32);
    linef(w, "\tfor <%s>; %s", o->rcpt[0], date);
    b64_noise(w, noise, 43);
    linef(w,
          "DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; "
          "d=customer%u.example;",
          cust);
    linef(w,
          "\ts=s%u; t=%lld; h=from:to:subject:date:message-id:"
          "mime-version;",
          rnd_below(w, 4), (long long)t);
    linef(w, "\tbh=%s=;", noise);
    for (int i = 0; i < 4; i++) {
        b64_noise(w, noise, 70);
        linef(w, "\t%s%s", i == 0 ? "b=" : "", noise);
    }
    line(w, "MIME-Version: 1.0", 17);
    linef(w, "From: %s %s <%s@customer%u.example>",
          first_names[w->first].header, last, local, cust);
    for (int i = 0; i < o->nrcpt; i++)
        linef(w, "%s <%s>", i == 0 ? "To: Support" : "Cc: Support", o->rcpt[i]);
    linef(w, "Subject: %s%s", reply ? "Re: " : "", w->subject);
    linef(w, "Date: %s", date);
    linef(w, "Message-ID: <%s>", w->mid);
    if (reply) {
        linef(w, "In-Reply-To: <%s>", w->thread_mid);
        linef(w, "References:%s <%s>", w->refs, w->thread_mid);
    }
    linef(w, "X-Mailer: %s", mailers[rnd_below(w, 4)]);
    line(w, "Content-Type: text/plain; charset=utf-8; format=flowed", 54);
    line(w, "Content-Transfer-Encoding: 7bit", 31);
    line(w, "", 0);

    line(w, "Hello,", 6);
    line(w, "", 0);
    bool dotline = rnd_below(w, 10) == 0;
    /* The quote of a reply takes about a third of the body. */
    size_t quote_from = (size_t)(target * 2 / 3);
    bool quoted = false;
    /* The last paragraph overshoots by half of one on average, and the
     * signature follows: stop short by about that much. */
    for (int guard = 0; (long)w->msg.len + 150 < target && guard < 100000;
         guard++) {
        if (reply && !quoted && w->msg.len >= quote_from) {
            line(w, "", 0);
            linef(w, "On %s, Support wrote:", date);
            quoted = true;
        }
        paragraph(w, quoted ? "> " : "", 12 + rnd_below(w, 40));
        if (dotline) {
            line(w, ".env was not changed on our side", 32);
            dotline = false;
        }
        if (!quoted)
            line(w, "", 0);
    }
    line(w, "", 0);
    line(w, "-- ", 3);
    linef(w, "%s %s", first_names[w->first].plain, last);
    linef(w, "Customer %u, +1 555 01%02u", cust, rnd_below(w, 100));
    str_add(&w->msg, ".\r\n", 3);

    /* The next reply answers this message and keeps the chain. */
    if (reply) {
        size_t rl = strlen(w->refs);
        snprintf(w->refs + rl, sizeof w->refs - rl, " <%s>", w->thread_mid);
        if (strlen(w->refs) > 700)
            w->refs[0] = '\0';
    }
    snprintf(w->thread_mid, sizeof w->thread_mid, "%s", w->mid);
    w->thread_len++;
}

/* ---- the connection ---------------------------------------------------- */

static void disconnect(struct worker *w)
{
    if (w->fd >= 0)
        close(w->fd);
    w->fd = -1;
    w->rlen = 0;
}

/* Waits until fd is ready for events, within the I/O timeout and the
 * overall deadline: 1 ready, 0 timed out, -1 error. */
static int wait_fd(struct worker *w, short events)
{
    for (int guard = 0; guard < 1000; guard++) {
        double left = w->sh->deadline - now_s();
        if (left > w->sh->o->io_timeout_s)
            left = w->sh->o->io_timeout_s;
        if (left <= 0)
            return 0;
        struct pollfd p = {.fd = w->fd, .events = events};
        int r = poll(&p, 1, (int)(left * 1000) + 1);
        if (r > 0)
            return 1;
        if (r == 0)
            return 0;
        if (errno != EINTR)
            return -1;
    }
    return -1;
}

static int write_all(struct worker *w, const char *p, size_t n)
{
    size_t off = 0;
    while (off < n) {
        ssize_t r = send(w->fd, p + off, n - off, MSG_NOSIGNAL);
        if (r > 0) {
            off += (size_t)r;
            w->bytes += r;
            continue;
        }
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            int ready = wait_fd(w, POLLOUT);
            if (ready > 0)
                continue;
            set_why(w, "write: %s", ready == 0 ? "timed out" : strerror(errno));
            return -1;
        }
        set_why(w, "write: %s", r < 0 ? strerror(errno) : "closed");
        return -1;
    }
    return 0;
}

/* Reads one line into line (NUL-terminated, CRLF stripped): 0, or -1. */
static int read_line(struct worker *w, char *out, size_t outsz)
{
    for (;;) {
        char *nl = memchr(w->rbuf, '\n', w->rlen);
        if (nl) {
            size_t n = (size_t)(nl - w->rbuf);
            size_t keep = n;
            if (keep > 0 && w->rbuf[keep - 1] == '\r')
                keep--;
            if (keep >= outsz)
                keep = outsz - 1;
            memcpy(out, w->rbuf, keep);
            out[keep] = '\0';
            memmove(w->rbuf, nl + 1, w->rlen - n - 1);
            w->rlen -= n + 1;
            return 0;
        }
        if (w->rlen == sizeof w->rbuf) {
            set_why(w, "reply line longer than %d bytes", RBUF_SIZE);
            return -1;
        }
        ssize_t r = recv(w->fd, w->rbuf + w->rlen, sizeof w->rbuf - w->rlen, 0);
        if (r > 0) {
            w->rlen += (size_t)r;
            continue;
        }
        if (r == 0) {
            set_why(w, "server closed the connection");
            return -1;
        }
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            int ready = wait_fd(w, POLLIN);
            if (ready > 0)
                continue;
            set_why(w, "read: %s", ready == 0 ? "timed out" : strerror(errno));
            return -1;
        }
        set_why(w, "read: %s", strerror(errno));
        return -1;
    }
}

/* Reads one reply, all its lines: its code (200..599), or -1 when the
 * connection failed or the reply is not SMTP. With caps, notes the EHLO
 * keywords that matter here. */
static int read_reply(struct worker *w, bool caps)
{
    char l[RBUF_SIZE + 1];
    for (int i = 0; i < MAX_REPLY_LINES; i++) {
        if (read_line(w, l, sizeof l) < 0)
            return -1;
        if (strlen(l) < 3 || l[0] < '2' || l[0] > '5' || l[1] < '0' ||
            l[1] > '9' || l[2] < '0' || l[2] > '9' ||
            (l[3] != '\0' && l[3] != ' ' && l[3] != '-')) {
            set_why(w, "not an SMTP reply: %.80s", l);
            return -1;
        }
        if (caps && i > 0) {
            const char *kw = l + 4;
            if (strncasecmp(kw, "PIPELINING", 10) == 0 &&
                (kw[10] == '\0' || kw[10] == ' '))
                w->pipelining = true;
            if (strncasecmp(kw, "SIZE", 4) == 0 &&
                (kw[4] == '\0' || kw[4] == ' '))
                w->size_ext = true;
        }
        if (l[3] != '-')
            return (l[0] - '0') * 100 + (l[1] - '0') * 10 + (l[2] - '0');
    }
    set_why(w, "reply of more than %d lines", MAX_REPLY_LINES);
    return -1;
}

static int connect_once(struct worker *w)
{
    set_why(w, "no address");
    for (struct addrinfo *a = w->sh->ai; a; a = a->ai_next) {
        w->fd =
            socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                   a->ai_protocol);
        if (w->fd < 0) {
            set_why(w, "socket: %s", strerror(errno));
            continue;
        }
        int r = connect(w->fd, a->ai_addr, a->ai_addrlen);
        if (r < 0 && errno == EINPROGRESS) {
            int ready = wait_fd(w, POLLOUT);
            int soerr = ETIMEDOUT;
            socklen_t sl = sizeof soerr;
            if (ready > 0)
                getsockopt(w->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
            r = soerr == 0 ? 0 : -1;
            errno = soerr;
        }
        if (r == 0) {
            int one = 1;
            /* The pipelined commands and the message each go in one
             * write; Nagle would only hold the next one back. */
            setsockopt(w->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            return 0;
        }
        set_why(w, "connect: %s", strerror(errno));
        disconnect(w);
    }
    w->connect_errors++;
    return -1;
}

/* Connects and greets: 0 ready for a transaction, -1 failed. */
static int session_open(struct worker *w)
{
    const struct opts *o = w->sh->o;
    if (connect_once(w) < 0) {
        note_error(w);
        return -1;
    }
    w->connects++;
    w->pipelining = w->size_ext = false;
    w->txns_on_conn = 0;
    int code = read_reply(w, false);
    if (code < 0)
        goto fail;
    if (code != 220) {
        set_why(w, "greeting %d", code);
        goto fail;
    }
    const char *verb = o->lmtp ? "LHLO" : "EHLO";
    char cmd[128];
    int n = snprintf(cmd, sizeof cmd, "%s " HELO_NAME "\r\n", verb);
    if (write_all(w, cmd, (size_t)n) < 0)
        goto fail;
    code = read_reply(w, true);
    if (code >= 500 && !o->lmtp) {
        /* An SMTP server without ESMTP: no pipelining, no SIZE. */
        n = snprintf(cmd, sizeof cmd, "HELO " HELO_NAME "\r\n");
        if (write_all(w, cmd, (size_t)n) < 0)
            goto fail;
        code = read_reply(w, false);
    }
    if (code < 0)
        goto fail;
    if (code / 100 != 2) {
        set_why(w, "%s answered %d", verb, code);
        goto fail;
    }
    return 0;
fail:
    note_error(w);
    disconnect(w);
    return -1;
}

/* Did the server close the idle connection (or say 421) since the last
 * transaction? Checked before using it again, so that a server that
 * hangs up between messages costs a reconnect, not a message. */
static bool server_hung_up(struct worker *w)
{
    if (w->rlen > 0)
        return true; /* an unsolicited reply: a 421 */
    struct pollfd p = {.fd = w->fd, .events = POLLIN};
    if (poll(&p, 1, 0) <= 0)
        return false;
    char c;
    ssize_t r = recv(w->fd, &c, 1, MSG_PEEK);
    return r >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK);
}

/* ---- one transaction --------------------------------------------------- */

/* OUT_RETRY: the server hung up (or said 421) before any of the message
 * was sent, on a connection that had already carried one: the race of a
 * server closing an idle connection. Nothing was delivered, so the same
 * message goes again on a new connection, once. */
enum outcome {
    OUT_ACKED,
    OUT_TEMPFAIL,
    OUT_REJECTED,
    OUT_UNANSWERED,
    OUT_RETRY
};

static enum outcome class_of(int code)
{
    if (code / 100 == 2)
        return OUT_ACKED;
    return code / 100 == 4 ? OUT_TEMPFAIL : OUT_REJECTED;
}

/* Sends the command i of the transaction (0 MAIL, 1..nrcpt RCPT, then
 * DATA) into w->cmd. */
static void add_command(struct worker *w, int i)
{
    const struct opts *o = w->sh->o;
    if (i == 0) {
        str_printf(&w->cmd, "MAIL FROM:<" MAIL_FROM ">");
        if (w->size_ext)
            str_printf(&w->cmd, " SIZE=%zu", w->msg.len);
        str_add(&w->cmd, "\r\n", 2);
    } else if (i <= o->nrcpt) {
        str_printf(&w->cmd, "RCPT TO:<%s>\r\n", o->rcpt[i - 1]);
    } else {
        str_add(&w->cmd, "DATA\r\n", 6);
    }
}

/* Sends w->msg as one transaction. *close_after is set when the
 * connection must not be used again (an error, or a 421). reused: the
 * connection has carried a transaction before (see OUT_RETRY). */
static enum outcome transaction(struct worker *w, bool reused,
                                bool *close_after)
{
    const struct opts *o = w->sh->o;
    int ncmd = o->nrcpt + 2;
    int codes[MAX_RCPT + 2];
    int got = 0;
    bool body_sent = false;

    *close_after = false;
    if (w->pipelining) {
        /* RFC 2920: MAIL, every RCPT and DATA in one write, then the
         * replies in order. */
        w->cmd.len = 0;
        for (int i = 0; i < ncmd; i++)
            add_command(w, i);
        if (write_all(w, w->cmd.p, w->cmd.len) < 0)
            goto lost;
        /* After a 421 the server closes: no more replies will come. */
        for (; got < ncmd; got++) {
            if ((codes[got] = read_reply(w, false)) < 0)
                goto lost;
            if (codes[got] == 421) {
                got++;
                break;
            }
        }
    } else {
        /* One command at a time; stop where the server said no. */
        int accepted = 0;
        for (; got < ncmd; got++) {
            if (got == ncmd - 1 && accepted == 0)
                break;
            w->cmd.len = 0;
            add_command(w, got);
            if (write_all(w, w->cmd.p, w->cmd.len) < 0)
                goto lost;
            if ((codes[got] = read_reply(w, false)) < 0)
                goto lost;
            if ((got == 0 && codes[0] / 100 != 2) || codes[got] == 421) {
                got++;
                break;
            }
            if (got > 0 && got <= o->nrcpt && codes[got] / 100 == 2)
                accepted++;
        }
    }
    for (int i = 0; i < got; i++)
        if (codes[i] == 421)
            *close_after = true;
    if (*close_after && reused)
        return OUT_RETRY;

    bool mail_ok = codes[0] / 100 == 2;
    int naccepted = 0;
    bool rcpt_temp = false;
    for (int i = 1; i <= o->nrcpt && i < got; i++) {
        if (codes[i] / 100 == 2)
            naccepted++;
        else if (codes[i] / 100 == 4)
            rcpt_temp = true;
    }
    enum outcome refused = !mail_ok ? class_of(codes[0])
                           : naccepted == 0
                               ? (rcpt_temp ? OUT_TEMPFAIL : OUT_REJECTED)
                           : got == ncmd ? class_of(codes[ncmd - 1])
                                         : OUT_REJECTED;
    bool data_go = got == ncmd && codes[ncmd - 1] == 354;

    if (data_go && (!mail_ok || naccepted == 0)) {
        /* A server that took DATA with nobody to deliver to: end it
         * empty and keep the earlier refusal. */
        body_sent = true;
        if (write_all(w, ".\r\n", 3) < 0)
            goto lost;
        if (read_reply(w, false) < 0)
            goto lost;
        return refused;
    }
    if (!data_go) {
        if (refused == OUT_ACKED)
            refused = OUT_REJECTED; /* a 2xx to DATA is not SMTP */
        if (mail_ok && !*close_after) {
            /* The transaction MAIL opened is still open on the server. */
            if (write_all(w, "RSET\r\n", 6) < 0 || read_reply(w, false) < 0) {
                note_error(w);
                *close_after = true;
            }
        }
        return refused;
    }

    /* From here the server may have the message, whatever happens. */
    body_sent = true;
    if (write_all(w, w->msg.p, w->msg.len) < 0)
        goto lost;
    double t0 = now_s();
    /* LMTP (RFC 2033 4.2): one reply per accepted recipient, in order. */
    int nfinal = o->lmtp ? naccepted : 1;
    enum outcome out = OUT_ACKED;
    for (int i = 0; i < nfinal; i++) {
        int code = read_reply(w, false);
        if (code < 0)
            goto lost;
        if (code == 421)
            *close_after = true;
        enum outcome c = class_of(code);
        /* Mixed LMTP replies: the message counts as its worst one. */
        if (c == OUT_TEMPFAIL || (c == OUT_REJECTED && out == OUT_ACKED))
            out = c;
    }
    if (out == OUT_ACKED) {
        double ms = (now_s() - t0) * 1000.0;
        if (w->nlat == w->lat_cap) {
            w->lat_cap = w->lat_cap ? w->lat_cap * 2 : 1024;
            w->lat_ms = xrealloc(w->lat_ms, w->lat_cap * sizeof *w->lat_ms);
        }
        w->lat_ms[w->nlat++] = (float)ms;
    }
    return out;

lost:
    *close_after = true;
    if (!body_sent && reused)
        return OUT_RETRY;
    note_error(w);
    return OUT_UNANSWERED;
}

static void record_acked(struct worker *w)
{
    int fd = w->sh->acked_fd;
    if (fd < 0)
        return;
    char l[sizeof w->mid + 1];
    int n = snprintf(l, sizeof l, "%s\n", w->mid);
    /* One write per line on O_APPEND: lines from threads never mix, and
     * nothing sits in a user-space buffer when this process is killed. */
    for (int guard = 0; guard < 100; guard++) {
        ssize_t r = write(fd, l, (size_t)n);
        if (r == n)
            return;
        if (r < 0 && errno == EINTR)
            continue;
        break;
    }
    set_why(w, "cannot append to %s: %s", w->sh->o->acked_path,
            strerror(errno));
    note_error(w);
}

static void pause_s(struct worker *w, double s)
{
    double left = w->sh->deadline - now_s();
    if (s > left)
        s = left;
    if (s <= 0)
        return;
    struct timespec ts = {.tv_sec = (time_t)s,
                          .tv_nsec = (long)((s - (double)(time_t)s) * 1e9)};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct shared *sh = w->sh;
    double backoff = 0;
    bool again = false; /* w->msg is to be sent again (OUT_RETRY) */

    while (now_s() < sh->deadline) {
        if (!again && atomic_load(&sh->next_slot) >= sh->o->count)
            break;
        if (w->fd >= 0 && server_hung_up(w))
            disconnect(w);
        if (w->fd < 0) {
            if (session_open(w) < 0) {
                /* The server is down or refusing: retry, more slowly
                 * each time, up to half a second. */
                backoff = backoff == 0 ? 0.01 : backoff * 2;
                if (backoff > 0.5)
                    backoff = 0.5;
                pause_s(w, backoff);
                continue;
            }
            backoff = 0;
        }
        if (!again) {
            long slot = atomic_fetch_add(&sh->next_slot, 1);
            if (slot >= sh->o->count)
                break;
            build_message(w);
            w->seq++;
        }
        bool close_after;
        enum outcome out = transaction(w, w->txns_on_conn > 0, &close_after);
        w->txns_on_conn++;
        if (close_after)
            disconnect(w);
        again = out == OUT_RETRY;
        if (again)
            continue;
        w->sent++;
        switch (out) {
        case OUT_ACKED:
            w->acked++;
            record_acked(w);
            break;
        case OUT_TEMPFAIL: w->tempfail++; break;
        case OUT_REJECTED: w->rejected++; break;
        case OUT_UNANSWERED:
        case OUT_RETRY: w->unanswered++; break;
        }
        w->done_at = now_s();
    }
    if (again) {
        /* Out of time before it could go again. */
        w->sent++;
        w->unanswered++;
    }
    if (w->fd >= 0) {
        /* A polite end; its reply does not matter. */
        if (write_all(w, "QUIT\r\n", 6) == 0) {
            struct pollfd p = {.fd = w->fd, .events = POLLIN};
            if (poll(&p, 1, 200) > 0) {
                char sink[512];
                ssize_t ignored = recv(w->fd, sink, sizeof sink, 0);
                (void)ignored;
            }
        }
        disconnect(w);
    }
    return NULL;
}

/* ---- options and summary ----------------------------------------------- */

static void usage(FILE *f)
{
    fputs("usage: smtp_load --host HOST --port PORT [--connections N]\n"
          "                 [--count TOTAL] [--size BYTES] [--rcpt ADDR]...\n"
          "                 [--seed N] [--timeout-s S] [--io-timeout-s S]\n"
          "                 [--acked FILE] [--lmtp] [--reply-percent P]\n"
          "Sends TOTAL messages (default 5000) over N connections (8) with\n"
          "ESMTP pipelining; prints a JSON summary. Defaults: --size 3000,\n"
          "--rcpt support@example.com, --timeout-s 120, --io-timeout-s 30,\n"
          "--seed from the clock, --reply-percent 33 (messages that answer\n"
          "the previous one of their connection).\n",
          f);
}

static int parse_long(const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

static int parse_seconds(const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v > 0) || v > 86400)
        return -1;
    *out = v;
    return 0;
}

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* Nearest-rank percentile of sorted v, or -1 when empty. */
static double pct(const float *v, size_t n, double p)
{
    if (n == 0)
        return -1;
    size_t rank = (size_t)(p * (double)n);
    if ((double)rank < p * (double)n)
        rank++;
    if (rank < 1)
        rank = 1;
    return v[rank - 1];
}

static void json_ms(const char *name, double v, bool last)
{
    if (v < 0)
        printf("  \"%s\": null%s\n", name, last ? "" : ",");
    else
        printf("  \"%s\": %.3f%s\n", name, v, last ? "" : ",");
}

/* The host goes back out in the JSON: escape what JSON needs. */
static void json_str(const char *s)
{
    putchar('"');
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            printf("\\%c", *p);
        else if (*p < 0x20)
            printf("\\u%04x", *p);
        else
            putchar(*p);
    }
    putchar('"');
}

int main(int argc, char **argv)
{
    struct opts o = {
        .connections = 8,
        .count = 5000,
        .size = 3000,
        .timeout_s = 120,
        .io_timeout_s = 30,
        .reply_pct = 33,
    };
    bool seeded = false;
    static const struct option longopts[] = {
        {"host", required_argument, NULL, 'h'},
        {"port", required_argument, NULL, 'p'},
        {"connections", required_argument, NULL, 'c'},
        {"count", required_argument, NULL, 'n'},
        {"size", required_argument, NULL, 's'},
        {"rcpt", required_argument, NULL, 'r'},
        {"seed", required_argument, NULL, 'S'},
        {"timeout-s", required_argument, NULL, 't'},
        {"io-timeout-s", required_argument, NULL, 'i'},
        {"acked", required_argument, NULL, 'a'},
        {"lmtp", no_argument, NULL, 'l'},
        {"reply-percent", required_argument, NULL, 'R'},
        {"help", no_argument, NULL, 'H'},
        {NULL, 0, NULL, 0},
    };
    int ch, li = 0;
    long v;
    while ((ch = getopt_long(argc, argv, "", longopts, &li)) != -1) {
        switch (ch) {
        case 'h': o.host = optarg; break;
        case 'p': o.port = optarg; break;
        case 'c':
            if (parse_long(optarg, 1, MAX_CONNECTIONS, &v) < 0)
                goto bad;
            o.connections = (int)v;
            break;
        case 'n':
            if (parse_long(optarg, 0, MAX_COUNT, &o.count) < 0)
                goto bad;
            break;
        case 's':
            if (parse_long(optarg, MIN_SIZE, MAX_SIZE, &o.size) < 0)
                goto bad;
            break;
        case 'R':
            if (parse_long(optarg, 0, 100, &o.reply_pct) < 0)
                goto bad;
            break;
        case 'r':
            if (o.nrcpt == MAX_RCPT || !*optarg ||
                strpbrk(optarg, "<>\r\n \t") || strlen(optarg) > 254)
                goto bad;
            o.rcpt[o.nrcpt++] = optarg;
            break;
        case 'S':
            if (parse_long(optarg, 0, LONG_MAX, &v) < 0)
                goto bad;
            o.seed = (uint64_t)v;
            seeded = true;
            break;
        case 't':
            if (parse_seconds(optarg, &o.timeout_s) < 0)
                goto bad;
            break;
        case 'i':
            if (parse_seconds(optarg, &o.io_timeout_s) < 0)
                goto bad;
            break;
        case 'a': o.acked_path = optarg; break;
        case 'l': o.lmtp = true; break;
        case 'H': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind != argc || !o.host || !o.port) {
        usage(stderr);
        return 2;
    }
    if (o.nrcpt == 0)
        o.rcpt[o.nrcpt++] = "support@example.com";
    if (!seeded) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        o.seed = ((uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000) %
                 1000000000000ULL;
    }

    struct shared sh = {.o = &o, .acked_fd = -1};
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM};
    int gai = getaddrinfo(o.host, o.port, &hints, &sh.ai);
    if (gai != 0) {
        fprintf(stderr, "smtp_load: %s:%s: %s\n", o.host, o.port,
                gai_strerror(gai));
        return 1;
    }
    if (o.acked_path) {
        sh.acked_fd =
            open(o.acked_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (sh.acked_fd < 0) {
            fprintf(stderr, "smtp_load: %s: %s\n", o.acked_path,
                    strerror(errno));
            freeaddrinfo(sh.ai);
            return 1;
        }
    }
    signal(SIGPIPE, SIG_IGN);

    struct worker *ws = calloc((size_t)o.connections, sizeof *ws);
    if (ws == NULL) {
        fputs("smtp_load: out of memory\n", stderr);
        return 1;
    }
    sh.start = now_s();
    sh.deadline = sh.start + o.timeout_s;
    int started = 0;
    for (int i = 0; i < o.connections; i++) {
        ws[i].sh = &sh;
        ws[i].idx = i;
        ws[i].fd = -1;
        ws[i].done_at = sh.start;
        /* splitmix64 of (seed, connection): distinct, reproducible streams */
        uint64_t z = o.seed + 0x9E3779B97F4A7C15ULL * (uint64_t)(i + 1);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
        ws[i].rng = (z ^ (z >> 31)) | 1;
        int e = pthread_create(&ws[i].tid, NULL, worker_main, &ws[i]);
        if (e != 0) {
            fprintf(stderr, "smtp_load: thread %d: %s\n", i, strerror(e));
            break;
        }
        started++;
    }
    for (int i = 0; i < started; i++)
        pthread_join(ws[i].tid, NULL);
    double end = sh.start;
    bool timed_out = now_s() >= sh.deadline;

    long sent = 0, acked = 0, tempfail = 0, rejected = 0, unanswered = 0;
    long errors = 0, connect_errors = 0, connects = 0, bytes = 0;
    size_t nlat = 0;
    for (int i = 0; i < started; i++) {
        sent += ws[i].sent;
        acked += ws[i].acked;
        tempfail += ws[i].tempfail;
        rejected += ws[i].rejected;
        unanswered += ws[i].unanswered;
        errors += ws[i].errors;
        connect_errors += ws[i].connect_errors;
        connects += ws[i].connects;
        bytes += ws[i].bytes;
        nlat += ws[i].nlat;
        if (ws[i].done_at > end)
            end = ws[i].done_at;
    }
    float *lat = xrealloc(NULL, (nlat ? nlat : 1) * sizeof *lat);
    size_t k = 0;
    for (int i = 0; i < started; i++) {
        if (ws[i].nlat)
            memcpy(lat + k, ws[i].lat_ms, ws[i].nlat * sizeof *lat);
        k += ws[i].nlat;
    }
    qsort(lat, nlat, sizeof *lat, cmp_float);
    /* Until the last message's answer; with none at all, the time spent
     * trying. */
    double elapsed = sent > 0 ? end - sh.start : now_s() - sh.start;

    printf("{\n  \"host\": ");
    json_str(o.host);
    printf(",\n  \"port\": ");
    json_str(o.port);
    printf(",\n  \"protocol\": \"%s\",\n", o.lmtp ? "lmtp" : "smtp");
    printf("  \"connections\": %d,\n  \"count\": %ld,\n  \"size\": %ld,\n",
           started, o.count, o.size);
    printf("  \"seed\": %" PRIu64 ",\n", o.seed);
    printf("  \"reply_percent\": %ld,\n", o.reply_pct);
    printf("  \"sent\": %ld,\n  \"acked\": %ld,\n  \"tempfail\": %ld,\n"
           "  \"rejected\": %ld,\n  \"unanswered\": %ld,\n"
           "  \"errors\": %ld,\n  \"connect_errors\": %ld,\n"
           "  \"connects\": %ld,\n  \"bytes_sent\": %ld,\n",
           sent, acked, tempfail, rejected, unanswered, errors, connect_errors,
           connects, bytes);
    printf("  \"timed_out\": %s,\n", timed_out ? "true" : "false");
    printf("  \"elapsed_s\": %.3f,\n", elapsed);
    printf("  \"msgs_per_s\": %.1f,\n",
           elapsed > 0 ? (double)acked / elapsed : 0.0);
    json_ms("p50_ms", pct(lat, nlat, 0.50), false);
    json_ms("p90_ms", pct(lat, nlat, 0.90), false);
    json_ms("p99_ms", pct(lat, nlat, 0.99), false);
    json_ms("max_ms", nlat ? lat[nlat - 1] : -1, true);
    printf("}\n");
    fflush(stdout);

    for (int i = 0; i < o.connections; i++) {
        free(ws[i].lat_ms);
        free(ws[i].msg.p);
        free(ws[i].cmd.p);
    }
    free(ws);
    free(lat);
    if (sh.acked_fd >= 0)
        close(sh.acked_fd);
    freeaddrinfo(sh.ai);
    return 0;

bad:
    fprintf(stderr, "smtp_load: bad value for --%s: '%s'\n", longopts[li].name,
            optarg);
    usage(stderr);
    return 2;
}

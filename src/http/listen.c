/* SPDX-License-Identifier: Apache-2.0 */
/*
 * listen.c - "host:port" and "[v6]:port" to a socket address.
 *
 * The daemon binds its own socket (server.c) so that a busy port or a bad
 * address comes back as an error with the system's reason instead of
 * libmicrohttpd's silent failure.
 */
#include <netdb.h>
#include <netinet/in.h>
#include <string.h>

#include "http/http-private.h"

int mr__http_parse_listen(const char *listen, struct sockaddr_storage *sa,
                          socklen_t *salen, struct mr_error *err)
{
    memset(sa, 0, sizeof *sa);
    *salen = 0;
    if (listen == NULL || listen[0] == '\0')
        return mr_error_set(err, MR_EINVAL, "no listen address");
    size_t n = strlen(listen);
    if (n > 300)
        return mr_error_set(err, MR_EINVAL, "listen address too long");

    char host[300];
    const char *port;
    if (listen[0] == '[') {
        const char *close = strchr(listen, ']');
        if (close == NULL || close[1] != ':')
            return mr_error_set(err, MR_EINVAL,
                                "listen address '%s': expected [v6]:port",
                                listen);
        size_t hlen = (size_t)(close - listen - 1);
        memcpy(host, listen + 1, hlen);
        host[hlen] = '\0';
        port = close + 2;
    } else {
        const char *colon = strrchr(listen, ':');
        if (colon == NULL || colon == listen)
            return mr_error_set(err, MR_EINVAL,
                                "listen address '%s': expected host:port",
                                listen);
        size_t hlen = (size_t)(colon - listen);
        memcpy(host, listen, hlen);
        host[hlen] = '\0';
        if (strchr(host, ':'))
            return mr_error_set(err, MR_EINVAL,
                                "listen address '%s': write IPv6 addresses "
                                "in brackets, [::1]:8080",
                                listen);
        port = colon + 1;
    }
    size_t plen = strlen(port);
    long pv = 0;
    bool ok = plen >= 1 && plen <= 5 && host[0] != '\0';
    for (size_t i = 0; ok && i < plen; i++) {
        if (port[i] < '0' || port[i] > '9')
            ok = false;
        else
            pv = pv * 10 + (port[i] - '0');
    }
    if (!ok || pv > 65535)
        return mr_error_set(err, MR_EINVAL,
                            "listen address '%s': bad host or port", listen);

    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    int rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0 || res == NULL)
        return mr_error_set(err, MR_EINVAL, "listen address '%s': %s", listen,
                            gai_strerror(rc));
    memcpy(sa, res->ai_addr, res->ai_addrlen);
    *salen = (socklen_t)res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

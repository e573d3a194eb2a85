/* SPDX-License-Identifier: Apache-2.0 */
/*
 * page.c - what the admin listings of queues share (h_webhooks.c's
 * deliveries, h_outbound.c's outbound mail and notifications): the query
 * of a page, the path's id, times that may be "never". Apart from
 * params.c, whose small parsers the CLI links without the server.
 */
#include <stdio.h>
#include <string.h>

#include "http/http-private.h"

void mr__http_json_time(struct mr_json *j, int64_t ms)
{
    if (ms == 0) {
        mr_json_null(j);
        return;
    }
    char t[MR__HTTP_TIME_LEN];
    mr__http_time(ms, t);
    mr_json_cstr(j, t);
}

bool mr__http_path_id(struct mr__http_request *req,
                      struct mr__http_response *resp, int64_t *id)
{
    if (mr__http_parse_id(req->id, id))
        return true;
    mr__http_problem(resp, 404, "no resource at this path");
    return false;
}

bool mr__http_query_id(const char *v, int64_t *out)
{
    *out = 0;
    return v == NULL || mr__http_parse_id(mr_span_make(v, strlen(v)), out);
}

bool mr__http_page_query(struct mr__http_request *req,
                         struct mr__http_response *resp, int def, int max,
                         const char *const *states, struct mr__http_page *out)
{
    struct mr_error err = {0};
    *out = (struct mr__http_page){0};
    if (mr__http_parse_limit(mr__http_query(req, "limit"), def, max,
                             &out->limit, &err) < 0) {
        mr__http_problem(resp, 400, "%s", err.msg);
        return false;
    }
    const char *state = mr__http_query(req, "state");
    if (state) {
        char names[120] = "";
        size_t used = 0;
        for (size_t i = 0; states[i] && !out->state; i++) {
            if (strcmp(state, states[i]) == 0)
                out->state = states[i];
            int w = snprintf(names + used, sizeof names - used, "%s%s",
                             i == 0 ? "" : states[i + 1] ? ", " : " or ",
                             states[i]);
            if (w > 0 && (size_t)w < sizeof names - used)
                used += (size_t)w;
        }
        if (!out->state) {
            mr__http_problem(resp, 400, "state is %s", names);
            return false;
        }
    }
    const char *after = mr__http_query(req, "after");
    if (!(after == NULL || strcmp(after, "0") == 0 ||
          mr__http_query_id(after, &out->after))) {
        mr__http_problem(resp, 400,
                         "after is an id from a listing (after=0 starts at "
                         "the beginning)");
        return false;
    }
    return true;
}

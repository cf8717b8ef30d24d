#include <uwsgi.h>
#include "shared.h"

static int first_request(struct wsgi_request *wsgi_req) {
	char body[64];
	if (uwsgi_parse_vars(wsgi_req)) return -1;
	snprintf(body, sizeof(body), "first+%s", shared_word());
	uwsgi_response_prepare_headers(wsgi_req, "200 OK", 6);
	uwsgi_response_write_body_do(wsgi_req, body, strlen(body));
	return UWSGI_OK;
}

struct uwsgi_plugin first_plugin = {
	.name = "first",
	.modifier1 = 240,
	.request = first_request,
};

#include <uwsgi.h>

static int first_request(struct wsgi_request *wsgi_req) {
	if (uwsgi_parse_vars(wsgi_req)) return -1;
	uwsgi_response_prepare_headers(wsgi_req, "200 OK", 6);
	uwsgi_response_write_body_do(wsgi_req, "first", strlen("first"));
	return UWSGI_OK;
}

struct uwsgi_plugin first_plugin = {
	.name = "first",
	.modifier1 = 253,
	.request = first_request,
};

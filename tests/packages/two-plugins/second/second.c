#include <uwsgi.h>

static int second_request(struct wsgi_request *wsgi_req) {
	if (uwsgi_parse_vars(wsgi_req)) return -1;
	uwsgi_response_prepare_headers(wsgi_req, "200 OK", 6);
	uwsgi_response_write_body_do(wsgi_req, "second", strlen("second"));
	return UWSGI_OK;
}

struct uwsgi_plugin second_plugin = {
	.name = "second",
	.modifier1 = 254,
	.request = second_request,
};

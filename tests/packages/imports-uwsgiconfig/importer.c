#include <uwsgi.h>

static int importer_request(struct wsgi_request *wsgi_req) {
	if (uwsgi_parse_vars(wsgi_req)) return -1;
	uwsgi_response_prepare_headers(wsgi_req, "200 OK", 6);
	uwsgi_response_write_body_do(wsgi_req, GREETING, strlen(GREETING));
	return UWSGI_OK;
}

struct uwsgi_plugin importer_plugin = {
	.name = "importer",
	.modifier1 = 242,
	.request = importer_request,
};

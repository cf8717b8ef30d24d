#include <uwsgi.h>

const char *alpha(void);
const char *beta(void);
const char *gamma_word(void);

static int multi_request(struct wsgi_request *wsgi_req) {
	char body[128];
	int len = snprintf(body, sizeof(body), "%s %s %s", alpha(), beta(), gamma_word());
	if (uwsgi_parse_vars(wsgi_req)) return -1;
	uwsgi_response_prepare_headers(wsgi_req, "200 OK", 6);
	uwsgi_response_write_body_do(wsgi_req, body, len);
	return UWSGI_OK;
}

struct uwsgi_plugin multi_plugin = {
	.name = "multi",
	.modifier1 = 247,
	.request = multi_request,
};

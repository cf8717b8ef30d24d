#include <uwsgi.h>
#include <math.h>

const char *cxx_word(void);
const char *object_word(void);
const char *archive_word(void);

static int features_request(struct wsgi_request *wsgi_req) {
	char body[256];
	int len = snprintf(body, sizeof(body), "c+%s+%s+%s+%s+%d",
		cxx_word(), object_word(), archive_word(), FEATURE_WORD, (int) sqrt(16.0));
	if (uwsgi_parse_vars(wsgi_req)) return -1;
	uwsgi_response_prepare_headers(wsgi_req, "200 OK", 6);
	uwsgi_response_write_body_do(wsgi_req, body, len);
	return UWSGI_OK;
}

struct uwsgi_plugin features_plugin = {
	.name = "features",
	.modifier1 = 251,
	.request = features_request,
};

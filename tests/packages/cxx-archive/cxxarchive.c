#include <uwsgi.h>

const char *cxx_word(void);  /* C++ behind a C name, in libcxxpart.a */

static int cxxarchive_request(struct wsgi_request *wsgi_req) {
	const char *word = cxx_word();
	if (uwsgi_parse_vars(wsgi_req)) return -1;
	uwsgi_response_prepare_headers(wsgi_req, "200 OK", 6);
	uwsgi_response_write_body_do(wsgi_req, (char *) word, strlen(word));
	return UWSGI_OK;
}

struct uwsgi_plugin cxxarchive_plugin = {
	.name = "cxxarchive",
	.modifier1 = 248,
	.request = cxxarchive_request,
};

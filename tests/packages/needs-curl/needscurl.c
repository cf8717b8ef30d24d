/* Links libcurl, a library outside every manylinux policy. */
#include <uwsgi.h>
#include <curl/curl.h>

static int needscurl_request(struct wsgi_request *wsgi_req) {
	const char *version = curl_version();
	if (uwsgi_parse_vars(wsgi_req)) return -1;
	uwsgi_response_prepare_headers(wsgi_req, "200 OK", 6);
	uwsgi_response_write_body_do(wsgi_req, (char *) version, strlen(version));
	return UWSGI_OK;
}

struct uwsgi_plugin needscurl_plugin = {
	.name = "needscurl",
	.modifier1 = 249,
	.request = needscurl_request,
};

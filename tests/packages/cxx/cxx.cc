// std::string at load time and in every request: the plugin needs libstdc++.
#include <uwsgi.h>
#include <string>

static std::string cxx_greeting;

static void cxx_on_load(void) {
	std::string s("cxx");
	s += " loaded";
	uwsgi_log("%s\n", s.c_str());
	cxx_greeting = s;
}

static int cxx_request(struct wsgi_request *wsgi_req) {
	if (uwsgi_parse_vars(wsgi_req)) return -1;
	std::string body = "Hello from C++: " + cxx_greeting;
	uwsgi_response_prepare_headers(wsgi_req, (char *) "200 OK", 6);
	uwsgi_response_write_body_do(wsgi_req, (char *) body.data(), body.size());
	return UWSGI_OK;
}

extern "C" struct uwsgi_plugin cxx_plugin = {
	.name = "cxx",
	.modifier1 = 249,
	.on_load = cxx_on_load,
	.request = cxx_request,
};

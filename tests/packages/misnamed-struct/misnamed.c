/* NAME is 'misnamed', but the struct is called hello_plugin: uWSGI would not find it. */
#include <uwsgi.h>

struct uwsgi_plugin hello_plugin = {
	.name = "misnamed",
};

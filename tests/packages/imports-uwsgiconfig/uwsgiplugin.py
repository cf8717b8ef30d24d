# As uWSGI's plugins/airbrake does: helpers from the build script itself.
from uwsgiconfig import spcall

NAME = spcall('echo importer')  # not a plain string: the backend must run this file to learn NAME
CFLAGS = ['-DGREETING=\\"%s\\"' % spcall('echo from-uwsgiconfig')]
GCC_LIST = ['importer']

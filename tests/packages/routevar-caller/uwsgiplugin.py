NAME = 'routevar'
CFLAGS = []
LDFLAGS = []
LIBS = []
GCC_LIST = ['routevar']

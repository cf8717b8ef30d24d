NAME = 'first'
GCC_LIST = ['first']

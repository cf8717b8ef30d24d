NAME = 'floors'
GCC_LIST = ['floors']

import sys

from services.payments.sandbox import main

sys.exit(main(sys.argv[1:]))

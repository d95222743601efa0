import sys

from skysieve.cli import main

sys.exit(main())

import sys

from graphseg.cli import main

sys.exit(main())

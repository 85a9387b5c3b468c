import sys

from pmc_data.cli import main

sys.exit(main())

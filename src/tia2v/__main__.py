from tia2v.cli import main

raise SystemExit(main())

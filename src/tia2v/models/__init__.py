"""Networks: the content/motion UNet, its blocks, and the trained network of a stage."""

"""A tiny shop: carts, prices and payments (an example code base for `rlm`)."""

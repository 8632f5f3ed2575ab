"""`make bench`: the gateway served as in production, side by side with the same calls made directly to the
apiserver over HTTP (the limit for a gateway that holds no cache). Benchmarks report; they never assert."""

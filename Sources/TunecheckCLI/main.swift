print("tunecheck: under construction")

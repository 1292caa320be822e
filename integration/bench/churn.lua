-- Connection: close on every request (the churn scenario).
wrk.headers["Connection"] = "close"

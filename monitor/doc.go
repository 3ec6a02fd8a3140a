// Package monitor is what operators look at: the asynqmon dashboard mounted
// behind authentication (asynqmon has none of its own), the health
// endpoints (/healthz, /readyz) and the Prometheus exposition (/metrics),
// including queue depth and latency read from Redis at a cost per scrape
// that grows with the number of queues, never with the number of tasks.
//
// Everything here is an http.Handler or a prometheus.Collector; package app
// mounts them on the process's mux.
package monitor

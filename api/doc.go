// Package api is plyrtasks' HTTP API for producers that are not written in
// Go (the plyr.fm backend is Python): enqueue a task by type name, read its
// state, progress and result, and cancel it.
//
//	POST   /v1/tasks/{type}   body: the payload JSON; options as query parameters
//	GET    /v1/tasks/{id}     state, attempts, last error, result, progress
//	DELETE /v1/tasks/{id}     cancel (the task controls' route, see Options.Routes)
//	       /v1/exports/…      the export service's handler, when mounted
//	       /v1/…              the task controls and strikes (package control), when mounted
//
// Every request carries "Authorization: Bearer $API_TOKEN". Without a
// configured token the API answers only direct loopback callers. Every
// response, errors included, is JSON; an error is {"error": "...", "field":
// "..."} with field naming the bad payload field or query parameter.
//
// The same package holds Tasks (task lookup over asynq's Inspector, shared
// with the CLI's --direct mode) and Remote (a Go client of this API, used by
// the CLI).
package api

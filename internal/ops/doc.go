// Package ops is what the operator's two tools share: the JSON shapes of
// their views (the CLI's -o json and the web console's API emit the same
// snake_case keys, because both build them here) and the actions whose
// effect must not depend on which tool asked, such as the stop a kill
// publishes.
package ops

// Package lint holds checks of the project's own code that no linter it
// runs makes (see helper_test.go); it has no code of its own.
package lint

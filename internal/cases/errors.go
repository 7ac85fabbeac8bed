package cases

import "errors"

var (
	// ErrInvalidRules means a rules file does not load; the message lists every problem.
	ErrInvalidRules = errors.New("invalid case rules")

	// ErrNotFound means no case has the id or number.
	ErrNotFound = errors.New("case not found")

	// ErrInvalid means an application or a status event is malformed; the error is a
	// *FieldErrors naming the fields.
	ErrInvalid = errors.New("invalid request")

	// ErrRefused means the application cannot be taken as asked (a service excluded from the
	// channel, a resident the registry does not know, no route); the message says why, in Russian.
	ErrRefused = errors.New("application refused")

	// ErrConflict means a department event id was already recorded with other content.
	ErrConflict = errors.New("event id already recorded with other content")

	// ErrNotRouted means the department does not handle the case.
	ErrNotRouted = errors.New("the case is not routed to this organization")

	// ErrInvalidRecord means a pulled status record cannot be applied (malformed, an unknown case,
	// a case of another organization); it belongs in the dead-letter topic.
	ErrInvalidRecord = errors.New("invalid application event record")
)

// FieldError names a field that is wrong.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// FieldErrors is an ErrInvalid with its fields.
type FieldErrors []FieldError

func (f FieldErrors) Error() string {
	s := "invalid request:"
	for _, e := range f {
		s += " " + e.Field + ": " + e.Message + ";"
	}
	return s
}

func (f FieldErrors) Unwrap() error { return ErrInvalid }

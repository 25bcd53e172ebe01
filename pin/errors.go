package pin

import "errors"

// Errors returned by the Server. Callers test them with errors.Is; a
// returned error may wrap one of them with detail and a cause.
var (
	// ErrMalformed means a message, unit id or context was rejected before
	// any state changed.
	ErrMalformed = errors.New("pin: malformed input")
	// ErrLocked means the attempt counter is locked until an operator
	// unlocks it. No KE2 was issued.
	ErrLocked = errors.New("pin: PIN locked")
	// ErrTooSoon means the policy's wait since the last failure has not
	// passed. No KE2 was issued and nothing was counted.
	ErrTooSoon = errors.New("pin: attempt too soon")
	// ErrWrongPIN means KE3 did not prove the PIN. The attempt stays
	// counted and the pending session is gone.
	ErrWrongPIN = errors.New("pin: wrong PIN")
	// ErrNoSession means there is no usable session with that id for that
	// unit and context. It never says which check failed.
	ErrNoSession = errors.New("pin: no such session")
	// ErrNoRegistration means FinishRegistration found no pending
	// registration of that requester: no evaluate step, another requester's,
	// or one that expired.
	ErrNoRegistration = errors.New("pin: no pending registration")
	// ErrIntegrity means a record or session read from the store does not
	// carry a valid MAC or seal for where it was found: the database was
	// changed by someone without the HSM. Nothing is answered from it.
	ErrIntegrity = errors.New("pin: stored state fails its integrity check")
	// ErrTaskItemUsed means the item of a task-bound session (a hash of a
	// sign: task) was already spent.
	ErrTaskItemUsed = errors.New("pin: task item already used")
	// ErrRecordExists means a first record was set where one exists.
	ErrRecordExists = errors.New("pin: PIN record exists")
	// ErrPolicy means an attempt policy (or its command-line form) is
	// invalid.
	ErrPolicy = errors.New("pin: invalid policy")
	// ErrConfig means a Config, Profile or LoginOptions is invalid.
	ErrConfig = errors.New("pin: invalid configuration")
	// ErrClosed means the Server was closed and its key material flushed.
	ErrClosed = errors.New("pin: server closed")
	// ErrSoftwareOPRF means the unit's record has a software OPRF key and
	// the server refuses those (Config.RefuseSoftwareOPRF): nothing was
	// counted; the unit's PIN must be registered again.
	ErrSoftwareOPRF = errors.New("pin: record has a software OPRF key, which this server refuses")
)

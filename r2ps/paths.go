package r2ps

// HTTP binding of the profile (docs/protocol.md §1).
const (
	// Path is where requests are POSTed.
	Path = "/r2ps"
	// KeysPath is where the server publishes its agreement and signing
	// keys as a JWKS.
	KeysPath = "/.well-known/r2ps-keys"
	// MediaType is the content type of requests and responses.
	MediaType = "application/jose"
)

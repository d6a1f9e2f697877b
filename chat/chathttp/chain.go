package chathttp

import (
	"errors"

	"caseroom/acl/audit"
)

func asChainError(err error) *audit.ChainError {
	var ce *audit.ChainError
	if errors.As(err, &ce) {
		return ce
	}
	return nil
}

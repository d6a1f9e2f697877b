.PHONY: run test build vet lint

# The README's two commands.
run:
	go run ./cmd/caseroomd serve

test:
	bash .ci/test.sh

build:
	go build -o bin/ ./cmd/...

vet:
	go vet ./...

lint: vet
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); exit 1)

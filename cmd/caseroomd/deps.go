package main

// Blank imports that keep go.mod's requirements while the packages that use them
// are being written. TODO: remove once every module below is imported for real.
import (
	_ "github.com/coder/websocket"
	_ "github.com/golang-jwt/jwt/v5"
	_ "github.com/redis/go-redis/v9"
	_ "golang.org/x/crypto/argon2"
)

func main() {}

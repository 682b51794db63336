// The etcd server at the version the pinned Kubernetes release uses. Built by scripts/envtest for
// the tests; never shipped.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}

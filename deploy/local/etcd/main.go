// Command etcd is the etcd server (go.etcd.io/etcd/server/v3/etcdmain) built
// from the published Go module, for the local control plane in deploy/local.
// The root etcd module cannot be `go install`ed (it has replace directives),
// so this tiny wrapper module calls the same entry point as upstream's main.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}

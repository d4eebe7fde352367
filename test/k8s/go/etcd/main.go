// Command etcd runs etcd's own entry point (server/v3/etcdmain), as the etcd binary does.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }

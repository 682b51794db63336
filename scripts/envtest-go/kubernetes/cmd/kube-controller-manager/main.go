// The kube-controller-manager command of the pinned Kubernetes release, with the same imports as
// upstream's cmd/kube-controller-manager/controller-manager.go. scripts/envtest runs only its
// namespace controller, so that deleting a namespace finishes as on a real cluster. Built for the
// tests; never shipped.
package main

import (
	"os"
	_ "time/tzdata"

	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"
	_ "k8s.io/component-base/metrics/prometheus/clientgo"
	_ "k8s.io/component-base/metrics/prometheus/version"
	"k8s.io/kubernetes/cmd/kube-controller-manager/app"
)

func main() {
	os.Exit(cli.Run(app.NewControllerManagerCommand()))
}

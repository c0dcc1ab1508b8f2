"""Simulated kubelet, GPU device plugin, GPU operator and volume provisioner for the local testbed.

The package registers fake Nodes with a real kube-apiserver, acts as the kubelet for the pods the real scheduler binds
to them, serves their logs over HTTPS, plays the NVIDIA GPU operator when a ClusterPolicy exists and provisions hostPath
PersistentVolumes for claims of its StorageClass. Pure logic lives in ``config``, ``model``, ``pods``, ``gpu_operator``,
``volumes`` and ``logs``; ``kube`` holds the small API machinery and ``agent`` wires everything together.
"""

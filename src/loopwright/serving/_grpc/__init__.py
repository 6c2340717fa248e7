"""The Open Inference Protocol v2 over gRPC: the proto, its generated stubs and their codec.

``inference_pb2`` / ``inference_pb2_grpc`` are generated (see ``generate``) and committed, so a
client may use them directly::

    import grpc
    from loopwright.serving._grpc import inference_pb2, inference_pb2_grpc

    stub = inference_pb2_grpc.GRPCInferenceServiceStub(grpc.insecure_channel("127.0.0.1:8081"))
    stub.ServerReady(inference_pb2.ServerReadyRequest()).ready
"""

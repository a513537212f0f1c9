"""The HTTP contract as code: it checks every request and writes the OpenAPI document.

routes (the route table: each view bound to its query, body and answer models, its caller and
its errors) <- schemas (the models, one module per section of API.md) <- bases (their building
blocks) and mapping_model (the mapping's model, generated from the field registry); openapi
writes the document from the route table; request_json bounds every JSON body.
"""

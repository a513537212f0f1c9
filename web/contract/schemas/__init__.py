"""The JSON API's requests and answers, declared once: they validate requests and write the OpenAPI document.

Requests are checked strictly (a JSON `"true"` is not a boolean); query parameters arrive as
text and are read as such. Answers are open in the published document (a client must accept
new fields), while the test suite checks every answer against its model with unknown fields
forbidden, so a field the code adds without declaring it here fails a test.

One module per section of API.md: common (errors, health, the document, pages and lists), auth,
reference, imports (uploads, starting, status), after_import (rows, checks, retries), users,
saved_mappings. The mapping's model is generated from the field registry (web.contract.mapping_model).
"""

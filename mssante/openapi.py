"""The OpenAPI 3.1 description of the patient's mailbox API (served at openapi.json)."""

from __future__ import annotations

from typing import Any

_ERROR = {"$ref": "#/components/responses/Error"}
_ID = {"type": "string", "pattern": "^[0-9a-f]{32}$"}


def _path_param(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": _ID}


def _ok(
    description: str, schema: dict[str, Any] | None = None, status: str = "200"
) -> dict[str, Any]:
    response: dict[str, Any] = {"description": description}
    if schema is not None:
        response["content"] = {"application/json": {"schema": schema}}
    return {status: response, "400": _ERROR, "401": _ERROR, "403": _ERROR, "404": _ERROR}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


OPENAPI: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {
        "title": "Mon espace santé - messagerie sécurisée du patient",
        "version": "1.0.0",
        "description": (
            "The patient's MSSanté mailbox. Only professionals start conversations; the patient "
            "replies, or writes first to a community pharmacy of the last 12 months of "
            "reimbursement history. Messages marked X-MSS-MES: FIN, closed conversations, "
            "application mailboxes and system messages cannot be answered. Every call is "
            "authorized by the policy decision point and traced; apps are always refused."
        ),
    },
    "servers": [{"url": "/api/mailbox"}],
    "security": [{"bearer": []}],
    "paths": {
        "/conversations": {
            "get": {
                "summary": "List conversations, newest first",
                "operationId": "listConversations",
                "responses": _ok(
                    "Conversations",
                    {
                        "type": "object",
                        "properties": {
                            "conversations": {"type": "array", "items": _ref("Conversation")},
                            "total": {"type": "integer"},
                        },
                    },
                ),
            },
            "post": {
                "summary": "Start a conversation with an eligible pharmacy",
                "operationId": "startConversation",
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ref("NewConversation")}},
                },
                "responses": _ok("The message sent", _ref("Message"), "201"),
            },
        },
        "/conversations/{conversation_id}": {
            "parameters": [_path_param("conversation_id")],
            "get": {
                "summary": "A conversation and its messages (without bodies)",
                "operationId": "getConversation",
                "responses": _ok("The conversation", _ref("Conversation")),
            },
            "delete": {
                "summary": "Delete a conversation (also from the back office)",
                "operationId": "deleteConversation",
                "responses": _ok("Deleted", None, "204"),
            },
        },
        "/conversations/{conversation_id}/messages": {
            "parameters": [_path_param("conversation_id")],
            "post": {
                "summary": "Reply",
                "operationId": "reply",
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ref("Reply")}},
                },
                "responses": _ok("The reply, queued for delivery", _ref("Message"), "201"),
            },
        },
        "/messages/{message_id}": {
            "parameters": [_path_param("message_id")],
            "get": {
                "summary": "Read a message (marks it read, sends the MDN asked for)",
                "operationId": "readMessage",
                "responses": _ok("The message with its body", _ref("Message")),
            },
        },
        "/messages/{message_id}/attachments/{attachment_id}": {
            "parameters": [_path_param("message_id"), _path_param("attachment_id")],
            "get": {
                "summary": "Download an attachment",
                "operationId": "downloadAttachment",
                "responses": {
                    "200": {
                        "description": "The bytes",
                        "content": {"application/octet-stream": {}},
                    },
                    "401": _ERROR,
                    "403": _ERROR,
                    "404": _ERROR,
                },
            },
        },
        "/messages/{message_id}/attachments/{attachment_id}/dmp": {
            "parameters": [_path_param("message_id"), _path_param("attachment_id")],
            "post": {
                "summary": "Save an IHE_XDM.ZIP document to the DMP",
                "operationId": "saveToDmp",
                "requestBody": {
                    "required": False,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "properties": {"document_unique_id": {"type": "string"}},
                            }
                        }
                    },
                },
                "responses": _ok(
                    "Documents created",
                    {
                        "type": "object",
                        "properties": {"documents": {"type": "array", "items": {"type": "object"}}},
                    },
                    "201",
                ),
            },
        },
        "/pharmacies": {
            "get": {
                "summary": "Pharmacies the patient may write to",
                "operationId": "listPharmacies",
                "responses": _ok("Pharmacies", {"type": "object"}),
            },
        },
        "/drafts": {
            "get": {
                "summary": "List drafts",
                "operationId": "listDrafts",
                "responses": _ok("Drafts", {"type": "object"}),
            },
            "post": {
                "summary": "Save a draft",
                "operationId": "createDraft",
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ref("Draft")}},
                },
                "responses": _ok("The draft", _ref("Draft"), "201"),
            },
        },
        "/drafts/{draft_id}": {
            "parameters": [_path_param("draft_id")],
            "get": {
                "summary": "Resume a draft",
                "operationId": "getDraft",
                "responses": _ok("The draft", _ref("Draft")),
            },
            "put": {
                "summary": "Update a draft",
                "operationId": "updateDraft",
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ref("Draft")}},
                },
                "responses": _ok("The draft", _ref("Draft")),
            },
            "delete": {
                "summary": "Delete a draft",
                "operationId": "deleteDraft",
                "responses": _ok("Deleted", None, "204"),
            },
        },
    },
    "components": {
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
        "responses": {
            "Error": {
                "description": "Error",
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": ["error"],
                            "properties": {
                                "error": {"type": "string"},
                                "message": {"type": "string"},
                                "rule": {"type": "string"},
                            },
                        }
                    }
                },
            }
        },
        "schemas": {
            "Attachment": {
                "oneOf": [
                    {
                        "type": "object",
                        "required": ["content_base64"],
                        "properties": {
                            "filename": {"type": "string"},
                            "content_type": {"type": "string"},
                            "content_base64": {"type": "string", "contentEncoding": "base64"},
                        },
                    },
                    {
                        "type": "object",
                        "required": ["dmp_document"],
                        "properties": {
                            "dmp_document": {"type": "string", "description": "DMP uniqueId"}
                        },
                    },
                    {
                        "type": "object",
                        "required": ["profile_summary"],
                        "properties": {"profile_summary": {"const": True}},
                    },
                ]
            },
            "Reply": {
                "type": "object",
                "required": ["body"],
                "properties": {
                    "body": {"type": "string"},
                    "draft_id": {"type": "string"},
                    "attachments": {"type": "array", "items": _ref("Attachment")},
                },
            },
            "NewConversation": {
                "type": "object",
                "required": ["to", "subject", "body"],
                "properties": {
                    "to": {"type": "string", "format": "email"},
                    "subject": {"type": "string"},
                    "body": {"type": "string"},
                    "draft_id": {"type": "string"},
                    "attachments": {"type": "array", "items": _ref("Attachment")},
                },
            },
            "Draft": {
                "type": "object",
                "properties": {
                    "id": {"type": "string"},
                    "conversation_id": {"type": ["string", "null"]},
                    "to": {"type": "string"},
                    "subject": {"type": "string"},
                    "body": {"type": "string"},
                    "attachments": {"type": "array", "items": {"type": "object"}},
                },
            },
            "Conversation": {
                "type": "object",
                "properties": {
                    "id": {"type": "string"},
                    "subject": {"type": "string"},
                    "counterpart": {"type": "object"},
                    "status": {"enum": ["open", "closed"]},
                    "started_by": {"type": "string"},
                    "unread": {"type": "integer"},
                    "can_reply": {"type": "boolean"},
                    "reply_refusal": {"type": ["string", "null"]},
                    "messages": {"type": "array", "items": _ref("Message")},
                },
            },
            "Message": {
                "type": "object",
                "properties": {
                    "id": {"type": "string"},
                    "conversation_id": {"type": "string"},
                    "direction": {"enum": ["inbound", "outbound", "system"]},
                    "from": {"type": "object"},
                    "to": {"type": "array"},
                    "subject": {"type": "string"},
                    "body": {"type": "string"},
                    "read": {"type": "boolean"},
                    "no_reply": {"type": "boolean"},
                    "x_mss": {"type": "object"},
                    "delivery_status": {"type": ["string", "null"]},
                    "attachments": {"type": "array", "items": {"type": "object"}},
                },
            },
        },
    },
}

"""Photos over HTTP, as visits and tasks take and serve them: the storage, an upload, the bytes."""

from __future__ import annotations

from flask import Response, current_app, request

from api import errors
from api.auth import current_scope
from api.extensions import db
from api.services import photos


def photo_storage() -> photos.PhotoStorage:
    """The app's photo storage, built once from the settings and the photo name key."""
    ext = current_app.extensions
    if "gridwork_photo_storage" not in ext:
        name_key = photos.load_name_key(db.session)
        ext["gridwork_photo_storage"] = photos.build_storage(current_app.config, name_key)
    return ext["gridwork_photo_storage"]


def upload(owner: photos.Owner, form: dict) -> photos.Photo:
    """Attach the form's photo (`PhotoUploadSchema`) to the visit or task `owner`, uploaded by
    the caller, and commit; the photo, its `duplicate` set (read by the upload's answer)."""
    # One photo an upload, as its answer names one: of two `file` parts the form reads the
    # first, and the second was dropped without a word (answered 201 with the first's id).
    if len(request.files.getlist("file")) > 1:
        message = "Send one photo per upload (one `file` part); nothing was stored."
        raise errors.Unprocessable(message, errors={"multipart": {"file": [message]}})
    limit = int(current_app.config["PHOTO_MAX_MB"] * 1024 * 1024)
    photo, duplicate = photos.attach_photo(
        db.session,
        photo_storage(),
        owner,
        form["file"].stream.read(limit + 1),
        uploader_id=current_scope().user_id,
        max_bytes=limit,
        claimed_sha256=form.get("sha256"),
    )
    db.session.commit()
    photo.duplicate = duplicate
    return photo


def serve(photo: photos.Photo) -> Response:
    """The photo's bytes as the answer: its type, its hash as the ETag, kept by no cache: a
    resident's photo on a shared phone was served from the browser's cache to the phone's next
    user, and to a worker moved off the grid, with no check and no audit (and a scrubbed
    photo's old bytes with it)."""
    data = photos.read_photo(db.session, photo_storage(), photo)
    response = Response(data, mimetype=photo.content_type)
    response.headers["ETag"] = f'"{photo.sha256}"'
    response.headers["Cache-Control"] = "no-store"
    return response.make_conditional(request)

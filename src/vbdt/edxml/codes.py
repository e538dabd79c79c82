"""The coded values of edXML: priority, steering type, business document type, status codes.

Each enum member carries its Vietnamese label (``.label``), the text a clerk sees in a DMS.
"""

from __future__ import annotations

from enum import IntEnum, StrEnum
from typing import Self

__all__ = ["AdminLevel", "BusinessDocType", "Priority", "StatusCode", "SteeringType"]


class _Labelled(IntEnum):
    """An integer code with a Vietnamese label."""

    label: str

    @classmethod
    def of(cls, value: int | str) -> Self:
        """The member for a number (or its text); ValueError names the valid range."""
        try:
            return cls(int(value))  # type: ignore[call-arg]  # the label is only for definitions
        except ValueError:
            valid = ", ".join(str(int(m)) for m in cls)
            raise ValueError(f"{value!r} is not one of {valid}") from None

    def __new__(cls, value: int, label: str) -> _Labelled:
        member = int.__new__(cls, value)
        member._value_ = value
        member.label = label
        return member


class Priority(_Labelled):
    """Độ khẩn: how urgent the document is."""

    NORMAL = 0, "Thường"
    URGENT = 1, "Khẩn"
    VERY_URGENT = 2, "Thượng khẩn"
    IMMEDIATE = 3, "Hỏa tốc"
    IMMEDIATE_SCHEDULED = 4, "Hỏa tốc hẹn giờ"


class SteeringType(_Labelled):
    """Whether the document is a directive (văn bản chỉ đạo)."""

    NONE = 0, "Không phải văn bản chỉ đạo"
    DIRECTIVE = 1, "Văn bản chỉ đạo"
    REPORT = 2, "Báo cáo thực hiện văn bản chỉ đạo"


class BusinessDocType(_Labelled):
    """BussinessDocType (the standard's spelling): what the package does to a document."""

    NEW = 0, "Văn bản điện tử mới"
    REVOKE = 1, "Thu hồi văn bản điện tử"
    UPDATE = 2, "Cập nhật văn bản điện tử"
    REPLACE = 3, "Thay thế văn bản điện tử"


class _LabelledText(StrEnum):
    """A text code with a Vietnamese label; ``str()`` is the code itself (StrEnum)."""

    label: str

    def __new__(cls, value: str, label: str) -> Self:
        member = str.__new__(cls, value)
        member._value_ = value
        member.label = label
        return member


class StatusCode(_LabelledText):
    """Status codes of a delivery receipt (two digits on the wire)."""


    ARRIVED = "01", "Đã đến: hệ thống đã nhận, văn thư chưa xử lý"
    REJECTED = "02", "Từ chối tiếp nhận"
    ACCEPTED = "03", "Đã tiếp nhận, vào sổ văn bản đến"
    ASSIGNED = "04", "Đã phân công xử lý"
    PROCESSING = "05", "Đang xử lý"
    COMPLETED = "06", "Hoàn thành xử lý"
    RECALL_REQUESTED = "13", "Yêu cầu lấy lại văn bản"
    CHANGE_ACCEPTED = "15", "Đồng ý yêu cầu cập nhật, lấy lại"
    CHANGE_REFUSED = "16", "Từ chối yêu cầu cập nhật, lấy lại"

    @classmethod
    def of(cls, value: str) -> StatusCode:
        """The member for a two-digit code; ValueError lists the valid codes."""
        try:
            return cls(value)  # type: ignore[call-arg]  # the label is only for definitions
        except ValueError:
            raise ValueError(f"{value!r} is not one of {', '.join(m.value for m in cls)}") from None


class AdminLevel(_LabelledText):
    """The four administrative levels that documents cross."""


    CENTRAL = "central", "Trung ương"
    PROVINCE = "province", "Tỉnh"
    DISTRICT = "district", "Huyện"
    COMMUNE = "commune", "Xã"

    @property
    def rank(self) -> int:
        """0 for central down to 3 for commune."""
        return list(AdminLevel).index(self)

import pytest

from accounts.validators import id_number_clean, mask_id_number, mask_mobile, mobile_clean
from core.errors import ValidationFailed
from tests.factories import id_number_for


def test_valid_id_number_is_normalised_to_upper_case_x():
    assert id_number_clean("11010519491231002x") == "11010519491231002X"
    assert id_number_clean(" 1101 0519 4912 3100 2X ") == "11010519491231002X"


@pytest.mark.parametrize(
    "value",
    [
        "",
        "110105194912310021",  # wrong check digit
        "11010519491331002X",  # month 13
        "1101051949123100",  # too short
        "110105491231002",  # 15-digit first-generation number
        "abcdefghijklmnopqr",
    ],
)
def test_invalid_id_numbers_are_refused(value):
    with pytest.raises(ValidationFailed) as caught:
        id_number_clean(value)
    assert caught.value.code == "invalid_id_number"


def test_factory_id_numbers_are_valid():
    for seq in range(50):
        assert id_number_clean(id_number_for(seq)) == id_number_for(seq)


@pytest.mark.parametrize("value", ["13800138000", "+86 138-0013-8000", "19912345678"])
def test_valid_mobiles(value):
    assert mobile_clean(value) in {"13800138000", "19912345678"}


@pytest.mark.parametrize("value", ["", "12800138000", "1380013800", "138001380001", "abc"])
def test_invalid_mobiles(value):
    with pytest.raises(ValidationFailed) as caught:
        mobile_clean(value)
    assert caught.value.code == "invalid_mobile"


def test_masking():
    assert mask_id_number("11010519491231002X") == "110***********002X"
    assert mask_mobile("13800138000") == "138****8000"


def test_shenzhen_county_codes_are_accepted_for_people_born_before_the_district_existed():
    # 440304 is Futian (stdnum dates it from 1983); 440309 is Longhua (from 2016). Holders born
    # earlier exist, so only the checksum, the date and the province are checked.
    for body in ("44030419600101123", "44030919800101123"):
        number = body + "0"
        from stdnum.cn import ric

        number = body + ric.calc_check_digit(number)
        assert id_number_clean(number) == number


def test_future_birth_date_is_refused():
    from stdnum.cn import ric

    body = "44030420990101123"
    with pytest.raises(ValidationFailed):
        id_number_clean(body + ric.calc_check_digit(body + "0"))
